package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"

	cameraid "github.com/buddyrec/buddyrec/camera"
)

type camEntry struct {
	camera string
	e      entry
}

// recoveryStats counts what recovery repaired.
type recoveryStats struct {
	closed, truncated, deleted, dropped, adopted, removed int
	shortTails                                            int // closed segments that held less than indexed
}

func (r recoveryStats) any() bool {
	return r.closed+r.truncated+r.deleted+r.dropped+r.adopted+r.removed+r.shortTails > 0
}

// lost reports whether recovery cut footage: a torn tail truncated, or an
// entry dropped because its file was gone. Closing open segments, indexing
// orphans and removing files without a complete fragment lose nothing that
// was ever readable.
func (r recoveryStats) lost() bool { return r.truncated+r.dropped+r.shortTails > 0 }

// recover makes disk and index agree after a crash:
//   - entries marked deleting: the file is removed and the entry deleted;
//   - entries whose file is missing are deleted;
//   - open entries: the file is parsed, a torn tail fragment cut off, the
//     duration patched and the entry closed with the true end (or the
//     file and entry removed if no complete fragment survived);
//   - segment files without an entry (a crash between file creation and
//     the first index write) are indexed, or removed if they hold no
//     complete fragment. Only the two newest date folders of each camera
//     are searched, since older orphans were handled by earlier Opens; a
//     camera absent from the index (a lost index.db) is searched fully.
func (s *Store) recover() error {
	var all []camEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachCamera(tx, func(camera string, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				e, err := decodeEntry(v)
				if err != nil {
					s.log.Warn("dropping undecodable index entry", "camera", camera, "err", err)
					e = entry{Start: keyTime(k), Deleting: true}
				}
				e.Start = keyTime(k)
				all = append(all, camEntry{camera: camera, e: e})
				return nil
			})
		})
	})
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}

	var st recoveryStats
	indexed := make(map[string]bool, len(all))
	cameras := make(map[string]bool)
	// The newest closed segments of each camera get their tail checked:
	// their last data may have been in the page cache at a power cut.
	recent := make(map[int]bool)
	perCamera := map[string]int{}
	for i := len(all) - 1; i >= 0; i-- {
		ce := all[i]
		if !ce.e.Open && !ce.e.Deleting && perCamera[ce.camera] < tailChecked {
			perCamera[ce.camera]++
			recent[i] = true
		}
	}
	for i, ce := range all {
		cameras[ce.camera] = true
		if err := s.recoverEntry(ce, recent[i], indexed, &st); err != nil {
			// one broken file must not keep the server from recording
			s.alarm(Alarm{Kind: AlarmWriteError, Camera: ce.camera, Err: "recovery: " + err.Error()})
		}
	}

	s.adoptOrphans(indexed, cameras, &st)
	if st.any() {
		s.log.Info("storage recovery", "closed", st.closed, "truncated", st.truncated, "short_closed", st.shortTails,
			"deleted", st.deleted, "dropped_entries", st.dropped, "indexed_orphans", st.adopted,
			"removed_files", st.removed)
		s.alarm(Alarm{Kind: AlarmRecovery, Lost: st.lost(), Err: fmt.Sprintf(
			"closed %d open segments (%d truncated), repaired %d closed segments shorter than indexed, indexed %d orphan files, removed %d empty files, dropped %d entries without file, finished %d deletions",
			st.closed, st.truncated, st.shortTails, st.adopted, st.removed, st.dropped, st.deleted)})
	}
	return nil
}

// repairFile parses the segment of e, cuts a torn tail, patches the
// duration and closes e with the true end. kept is false if the file holds
// no complete fragment.
func (s *Store) repairFile(e *entry) (kept, truncated bool, err error) {
	abs := filepath.Join(s.opts.Dir, filepath.FromSlash(e.File))
	res, err := scanSegment(abs)
	if err != nil || res.fragments == 0 {
		s.log.Warn("segment without footage", "file", e.File, "err", err)
		return false, false, nil
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return false, false, fmt.Errorf("stat %s: %w", e.File, err)
	}
	f, err := os.OpenFile(abs, os.O_WRONLY, 0)
	if err != nil {
		return false, false, fmt.Errorf("open %s for repair: %w", e.File, err)
	}
	defer f.Close()
	if fi.Size() > res.goodSize {
		if err := f.Truncate(res.goodSize); err != nil {
			return false, false, fmt.Errorf("truncate %s: %w", e.File, err)
		}
		truncated = true
	}
	if err := patchMvhdDuration(f, res.mvhdOff, res.duration); err != nil {
		return false, false, fmt.Errorf("patch duration of %s: %w", e.File, err)
	}
	// The repaired file must be durable before the entry that describes
	// it is committed.
	if err := f.Sync(); err != nil {
		return false, false, fmt.Errorf("sync %s: %w", e.File, err)
	}
	if err := f.Close(); err != nil {
		return false, false, fmt.Errorf("close %s: %w", e.File, err)
	}
	e.End = e.Start + int64(res.duration)
	e.Bytes = res.goodSize
	e.Codec = res.codec
	e.Open = false
	return true, truncated, nil
}

// adoptOrphans indexes or removes segment files that have no index entry.
// Problems with one folder or file are logged and alarmed; the rest goes on.
func (s *Store) adoptOrphans(indexed, cameras map[string]bool, st *recoveryStats) {
	list := func(dir string, wantDir bool) []string {
		names, err := sortedDirNames(dir, wantDir)
		if err != nil {
			s.alarm(Alarm{Kind: AlarmWriteError, Err: fmt.Sprintf("recovery: list %s: %v", dir, err)})
		}
		return names
	}
	for _, home := range list(s.opts.Dir, true) {
		for _, name := range list(filepath.Join(s.opts.Dir, home), true) {
			camDir := filepath.Join(s.opts.Dir, home, name)
			dates := list(camDir, true)
			h, herr := unescapeName(home)
			n, nerr := unescapeName(name)
			if herr == nil && nerr == nil && cameras[cameraid.New(h, n).String()] && len(dates) > 2 {
				dates = dates[len(dates)-2:]
			}
			for _, date := range dates {
				for _, file := range list(filepath.Join(camDir, date), false) {
					rel := home + "/" + name + "/" + date + "/" + file
					if !strings.HasSuffix(file, fileExt) || indexed[rel] {
						continue
					}
					if err := s.adoptOrphan(rel, st); err != nil {
						s.alarm(Alarm{Kind: AlarmWriteError, Camera: cameraid.New(h, n).String(), Err: "recovery: " + err.Error()})
					}
				}
			}
		}
	}
}

func (s *Store) adoptOrphan(rel string, st *recoveryStats) error {
	camera, recordedBy, start, perr := parseRelPath(rel)
	if perr != nil {
		s.log.Warn("ignoring unrecognised file in data dir", "file", rel, "err", perr)
		return nil
	}
	id, _ := cameraid.Parse(camera)
	e := entry{
		File:       filepath.FromSlash(rel),
		Start:      start.UnixNano(),
		End:        start.UnixNano(),
		Home:       id.Home,
		RecordedBy: recordedBy,
		Open:       true,
	}
	kept, _, err := s.repairFile(&e)
	if err != nil {
		return err
	}
	if !kept {
		if err := s.removeFile(rel); err != nil {
			return err
		}
		st.removed++
		return nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(camerasBucket)
		if err != nil {
			return err
		}
		if b := root.Bucket([]byte(camera)); b != nil {
			for b.Get(timeKey(e.Start)) != nil { // keep an existing entry at the same instant
				e.Start++
				e.End++
			}
		}
		return putEntry(tx, camera, &e)
	})
	if err != nil {
		return fmt.Errorf("index orphan %s: %w", rel, err)
	}
	s.log.Info("indexed segment file that had no index entry", "file", rel)
	st.adopted++
	return nil
}

func (s *Store) dropEntry(camera string, start int64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return deleteEntry(tx, camera, start) })
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, os.ErrNotExist)
}

// recoverEntry repairs one index entry; see recover.
func (s *Store) recoverEntry(ce camEntry, checkTail bool, indexed map[string]bool, st *recoveryStats) error {
	e := ce.e
	if e.File == "" || !filepath.IsLocal(e.File) {
		e.Deleting = true
		e.File = ""
	}
	abs := filepath.Join(s.opts.Dir, filepath.FromSlash(e.File))
	switch {
	case e.Deleting:
		if e.File != "" {
			if err := s.removeFile(e.File); err != nil {
				return err
			}
		}
		if err := s.dropEntry(ce.camera, e.Start); err != nil {
			return err
		}
		st.deleted++
		return nil
	case !fileExists(abs):
		s.log.Warn("index entry without file, dropping", "camera", ce.camera, "file", e.File)
		if err := s.dropEntry(ce.camera, e.Start); err != nil {
			return err
		}
		st.dropped++
		return nil
	}
	indexed[filepath.ToSlash(e.File)] = true
	if !e.Open {
		if !checkTail {
			return nil
		}
		end, err := fragmentsEnd(abs)
		if err != nil {
			return fmt.Errorf("check tail of %s: %w", e.File, err)
		}
		if end >= e.Bytes {
			return nil
		}
		s.log.Warn("closed segment shorter than indexed, repairing", "file", e.File, "indexed_bytes", e.Bytes, "complete_bytes", end)
		st.shortTails++
	}
	kept, truncated, err := s.repairFile(&e)
	if err != nil {
		return err
	}
	if truncated {
		st.truncated++
	}
	if !kept {
		if err := s.deleteSegment(ce.camera, &e); err != nil {
			return err
		}
		st.removed++
		return nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return putEntry(tx, ce.camera, &e) }); err != nil {
		return fmt.Errorf("close entry %s: %w", e.File, err)
	}
	if ce.e.Open {
		st.closed++
	}
	return nil
}

// tailChecked is how many of each camera's newest closed segments recovery
// checks for a tail shorter than the index says.
const tailChecked = 2

// fragmentsEnd walks the box headers of a segment file (reading only the
// headers, not the media) and returns the offset where the last complete
// top-level box ends: less than the indexed size means a torn or zeroed
// tail.
func fragmentsEnd(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	var hdr [16]byte
	pos := int64(0)
	for pos < size {
		n, _ := f.ReadAt(hdr[:], pos)
		bsize, typ, _, ok := boxHeader(hdr[:n])
		if !ok || pos+int64(bsize) > size || !knownTopBox(typ) {
			break
		}
		pos += int64(bsize)
	}
	return pos, nil
}

func knownTopBox(typ string) bool {
	switch typ {
	case "ftyp", "moov", "moof", "mdat", "free", "styp", "sidx", "prft":
		return true
	}
	return false
}
