package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CameraUsage is what the store holds of one camera.
type CameraUsage struct {
	// Bytes is the size of the camera's segment files, as indexed.
	Bytes int64
	// Segments counts them.
	Segments int
	// Oldest is the start of the oldest footage kept: how far back
	// retention (or min_free) lets an operator go.
	Oldest time.Time
}

// Usage is what the store holds, per camera and in all.
type Usage struct {
	Cameras map[string]CameraUsage
	// SegmentBytes sums Cameras' Bytes; IndexBytes is index.db's size.
	SegmentBytes, IndexBytes int64
}

// Usage walks the index once and sums each camera's segments. It reads
// only the index (no file is opened), skipping entries being deleted, but
// it visits every entry: callers cache the answer (a status page must not
// walk a month of segments per load). Safe beside writers and retention.
func (s *Store) Usage() (Usage, error) {
	u := Usage{Cameras: map[string]CameraUsage{}}
	err := s.dbView(func(tx *bolt.Tx) error {
		return forEachCamera(tx, func(camera string, b *bolt.Bucket) error {
			var cu CameraUsage
			err := b.ForEach(func(k, v []byte) error {
				n, deleting, err := entryBytes(v)
				if err != nil {
					s.log.Warn("usage: skipping bad index entry", "camera", camera, "err", err)
					return nil
				}
				if deleting {
					return nil
				}
				if cu.Segments == 0 {
					cu.Oldest = time.Unix(0, keyTime(k)).UTC()
				}
				cu.Segments++
				cu.Bytes += n
				return nil
			})
			if err != nil {
				return err
			}
			if cu.Segments > 0 {
				u.Cameras[camera] = cu
				u.SegmentBytes += cu.Bytes
			}
			return nil
		})
	})
	if err != nil {
		return Usage{}, fmt.Errorf("usage: read index: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(s.opts.Dir, "index.db")); err == nil {
		u.IndexBytes = fi.Size()
	}
	return u, nil
}

var (
	bytesField    = []byte(`"bytes":`)
	deletingField = []byte(`"deleting":true`)
)

// entryBytes reads an entry's size and deleting flag without decoding the
// whole JSON: a walk of every entry is what Usage costs. Entries are
// written by putEntry (encoding/json of entry), whose only string field
// that could hold arbitrary text is the file name, made of camera ids and
// times; anything unexpected takes the full decoder.
func entryBytes(v []byte) (n int64, deleting bool, err error) {
	if i := bytes.Index(v, bytesField); i >= 0 && bytes.Count(v, bytesField) == 1 {
		rest := v[i+len(bytesField):]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 0 && j < len(rest) && (rest[j] == ',' || rest[j] == '}') {
			if n, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				return n, bytes.Contains(v, deletingField), nil
			}
		}
	}
	e, err := decodeEntry(v)
	if err != nil {
		return 0, false, err
	}
	return e.Bytes, e.Deleting, nil
}
