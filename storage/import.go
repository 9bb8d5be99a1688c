package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	cameraid "github.com/buddyrec/buddyrec/camera"
)

// Import adopts a finished segment file that another server recorded (a
// backfill copy of footage a peer holds of this server's camera) into the
// store, keeping its provenance: the file is indexed under seg.Camera with
// seg.Home and seg.RecordedBy, and named as that recorder names its files.
//
// file must be a complete segment (init segment and whole fragments, no
// torn tail) on the same file system as the data dir, outside the camera
// folders; Import moves it into place. What the index says about it comes
// from the file, not from seg: the start is seg.Start (the recorder's wall
// clock, which the file does not hold), the end, size and codec are read
// from the fragments.
//
// Durability follows the package rule: the file is fsynced, moved, and the
// folders it went into are fsynced before the commit that names it, so the
// index never claims a copy a power cut could lose. Importing the same
// segment twice is harmless: the second call finds the first's entry and
// removes file.
func (s *Store) Import(seg Segment, file string) (Segment, error) {
	id, err := cameraid.Parse(seg.Camera)
	if err != nil {
		return Segment{}, fmt.Errorf("import: %w", err)
	}
	if seg.RecordedBy == "" {
		return Segment{}, fmt.Errorf("import %s: no recorded_by", seg.Camera)
	}
	if seg.Home == "" {
		seg.Home = id.Home
	}
	if seg.Home != id.Home {
		return Segment{}, fmt.Errorf("import %s: home %q is not the camera's home %q", seg.Camera, seg.Home, id.Home)
	}
	start := seg.Start.UTC().Truncate(time.Millisecond)
	rel, err := segmentRelPath(seg.Camera, seg.RecordedBy, start)
	if err != nil {
		return Segment{}, fmt.Errorf("import %s: %w", seg.Camera, err)
	}
	abs := filepath.Join(s.opts.Dir, rel)
	if d, err := filepath.Rel(s.opts.Dir, file); err == nil && filepath.IsLocal(d) && strings.Count(filepath.ToSlash(d), "/") == 3 {
		return Segment{}, fmt.Errorf("import %s: %s lies in the camera folders; copy it elsewhere in the data dir first", seg.Camera, file)
	}

	res, err := scanSegment(file)
	if err != nil {
		return Segment{}, fmt.Errorf("import %s: %w", file, err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return Segment{}, fmt.Errorf("import: %w", err)
	}
	if res.fragments == 0 || res.goodSize != fi.Size() {
		return Segment{}, fmt.Errorf("import %s: not a complete segment (%d fragments, %d of %d bytes whole)", file, res.fragments, res.goodSize, fi.Size())
	}
	e := entry{
		File:       rel,
		Start:      start.UnixNano(),
		End:        start.UnixNano() + int64(res.duration),
		Bytes:      res.goodSize,
		Codec:      res.codec,
		Home:       seg.Home,
		RecordedBy: seg.RecordedBy,
	}

	if have, ok, err := s.findFile(seg.Camera, e.Start, rel); err != nil {
		return Segment{}, err
	} else if ok {
		os.Remove(file) //nolint:errcheck // the copy is already in place
		return have.segment(seg.Camera), nil
	}

	if err := syncFile(file); err != nil {
		return Segment{}, fmt.Errorf("import %s: %w", file, err)
	}
	dirs, err := s.mkdirs(filepath.Dir(rel))
	if err != nil {
		return Segment{}, fmt.Errorf("import %s: %w", rel, err)
	}
	// An unindexed file at rel can only be an earlier import that a
	// crash interrupted before its commit: replacing it is right.
	if err := os.Rename(file, abs); err != nil {
		return Segment{}, fmt.Errorf("import %s: %w", rel, err)
	}
	for _, d := range append(dirs, filepath.Dir(abs)) {
		if err := s.fsys.SyncDir(d); err != nil {
			return Segment{}, fmt.Errorf("import %s: sync folder %s: %w", rel, d, err)
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(camerasBucket)
		if err != nil {
			return err
		}
		if b := root.Bucket([]byte(seg.Camera)); b != nil {
			for b.Get(timeKey(e.Start)) != nil { // the home's own segment may start at the same instant
				e.Start++
				e.End++
			}
		}
		return putEntry(tx, seg.Camera, &e)
	})
	if err != nil {
		return Segment{}, fmt.Errorf("import %s: index: %w", rel, err)
	}
	s.log.Info("imported segment", "file", rel, "recorded_by", e.RecordedBy, "bytes", e.Bytes)
	return e.segment(seg.Camera), nil
}

// findFile reports the entry of camera naming rel among those starting
// within a millisecond of start (Import may have moved the key by a few
// nanoseconds).
func (s *Store) findFile(camera string, start int64, rel string) (entry, bool, error) {
	var found entry
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(camerasBucket)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(camera))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(timeKey(start)); k != nil && keyTime(k) < start+int64(time.Millisecond); k, v = c.Next() {
			e, err := decodeEntry(v)
			if err == nil && filepath.ToSlash(e.File) == filepath.ToSlash(rel) && !e.Deleting {
				e.Start = keyTime(k)
				found, ok = e, true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return entry{}, false, fmt.Errorf("read index of %s: %w", camera, err)
	}
	return found, ok, nil
}

// mkdirs creates the folders of rel (relative to Dir) and returns the
// folders whose entries changed.
func (s *Store) mkdirs(rel string) ([]string, error) {
	var dirty []string
	dir := s.opts.Dir
	for _, p := range strings.Split(filepath.ToSlash(rel), "/") {
		next := filepath.Join(dir, p)
		if err := s.fsys.Mkdir(next); err == nil {
			dirty = append(dirty, dir)
		} else if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		dir = next
	}
	return dirty, nil
}

// syncFile fsyncs a file by path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Room is how many bytes may still be written before retention has to
// delete footage for space: free space above the floor (MinFreeFraction,
// MinFreeBytes), negative below it. Backfill asks before each copy, so
// that it never copies in what retention would delete at once.
func (s *Store) Room() (int64, error) {
	free, total, err := s.opts.StatFS(s.opts.Dir)
	if err != nil {
		return 0, fmt.Errorf("free space of %s: %w", s.opts.Dir, err)
	}
	return int64(free) - int64(s.floor(total)), nil
}
