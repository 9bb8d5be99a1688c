package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// camerasBucket holds one sub-bucket per camera id; each sub-bucket maps
// big-endian start unix-nanos to a JSON entry, so a cursor walks a camera's
// footage in time order.
var camerasBucket = []byte("cameras")

// entry is the index record of one segment file.
type entry struct {
	File       string `json:"file"` // relative to Dir
	Start      int64  `json:"start"`
	End        int64  `json:"end"`
	Bytes      int64  `json:"bytes"`
	Codec      string `json:"codec"`
	Home       string `json:"home"`
	RecordedBy string `json:"recorded_by"`
	// Open is true while a Writer still appends to the file; recovery
	// finishes entries left open by a crash.
	Open bool `json:"open,omitempty"`
	// Deleting is set by retention before it removes the file, so a crash
	// mid-delete is finished by recovery.
	Deleting bool `json:"deleting,omitempty"`
}

// Segment is one recorded file as the index knows it.
type Segment struct {
	Camera     string    `json:"camera"`
	File       string    `json:"file"` // relative to the data dir; see Store.SegmentPath
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Bytes      int64     `json:"bytes"`
	Codec      string    `json:"codec"`
	Home       string    `json:"home"`
	RecordedBy string    `json:"recorded_by"`
	Open       bool      `json:"open"`
}

func (e *entry) segment(camera string) Segment {
	return Segment{
		Camera:     camera,
		File:       e.File,
		Start:      time.Unix(0, e.Start).UTC(),
		End:        time.Unix(0, e.End).UTC(),
		Bytes:      e.Bytes,
		Codec:      e.Codec,
		Home:       e.Home,
		RecordedBy: e.RecordedBy,
		Open:       e.Open,
	}
}

func timeKey(ns int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(ns))
	return k
}

func keyTime(k []byte) int64 {
	if len(k) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k))
}

func putEntry(tx *bolt.Tx, camera string, e *entry) error {
	root, err := tx.CreateBucketIfNotExists(camerasBucket)
	if err != nil {
		return fmt.Errorf("index bucket: %w", err)
	}
	b, err := root.CreateBucketIfNotExists([]byte(camera))
	if err != nil {
		return fmt.Errorf("index bucket for camera %q: %w", camera, err)
	}
	b.FillPercent = 0.9 // keys are appended in time order
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode index entry %s: %w", e.File, err)
	}
	if err := b.Put(timeKey(e.Start), v); err != nil {
		return fmt.Errorf("index put %s: %w", e.File, err)
	}
	return nil
}

func deleteEntry(tx *bolt.Tx, camera string, start int64) error {
	root := tx.Bucket(camerasBucket)
	if root == nil {
		return nil
	}
	b := root.Bucket([]byte(camera))
	if b == nil {
		return nil
	}
	if err := b.Delete(timeKey(start)); err != nil {
		return fmt.Errorf("index delete %s@%d: %w", camera, start, err)
	}
	return nil
}

func decodeEntry(v []byte) (entry, error) {
	var e entry
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("decode index entry: %w", err)
	}
	return e, nil
}

// forEachCamera calls fn for every camera bucket.
func forEachCamera(tx *bolt.Tx, fn func(camera string, b *bolt.Bucket) error) error {
	root := tx.Bucket(camerasBucket)
	if root == nil {
		return nil
	}
	return root.ForEachBucket(func(k []byte) error {
		return fn(string(k), root.Bucket(k))
	})
}

// errLocked is returned when another process holds index.db.
var errLocked = errors.New("index.db is locked by another process")
