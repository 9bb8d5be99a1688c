package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/buddyrec/buddyrec/internal/boltfile"
	"github.com/buddyrec/buddyrec/internal/uring"
)

// Store is the recording storage of one server. Its methods are safe for
// concurrent use; each Writer belongs to one goroutine.
type Store struct {
	opts Options
	log  *slog.Logger
	db   *boltfile.File // reopened by the syncer after a failure

	fsys FS
	sync *syncer

	// spaceKick asks the syncer goroutine to free space at once (a write
	// met a full disk); cutGen, when it changes, asks every Writer to
	// close its segment at the next keyframe so that retention can delete
	// it.
	spaceKick   chan struct{}
	cutGen      atomic.Uint64
	retentionMu sync.Mutex // one retention pass at a time

	stopSync chan struct{}
	syncDone chan struct{}

	mu      sync.Mutex
	health  map[string]Alarm
	diskLow bool      // retention could not reach the free-space floor
	lastCut time.Time // when Writers were last asked to cut for retention

	closeOnce sync.Once
	done      chan struct{} // closed by Close: ends Run
}

// Open opens (or creates) the store in opts.Dir and runs crash recovery,
// so that afterwards every index entry is closed and points to a playable
// file, and every segment file on disk is indexed.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("open storage: no data dir")
	}
	switch opts.SyncMethod {
	case SyncAuto, SyncIOURing, SyncFdatasync:
	default:
		return nil, fmt.Errorf("open storage: unknown sync method %q", opts.SyncMethod)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	if opts.Commit != nil {
		return openRemote(opts)
	}
	path := filepath.Join(opts.Dir, "index.db")
	db, err := boltfile.Open(path, boltfile.Options{Bolt: bolt.Options{OpenFile: opts.openIndexFile}})
	if err != nil {
		if errors.Is(err, boltfile.ErrLocked) {
			return nil, fmt.Errorf("open storage %s: %w", path, errLocked)
		}
		return nil, fmt.Errorf("open storage: %w", err)
	}
	s := newStore(opts)
	s.db = db
	s.sync.commit = s.commitUpdates
	if err := s.recover(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open storage %s: recovery: %w", opts.Dir, err)
	}
	if err := s.startSyncer(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open storage %s: %w", opts.Dir, err)
	}
	return s, nil
}

// newStore is a Store of opts without its index.
func newStore(opts Options) *Store {
	s := &Store{
		opts:      opts,
		log:       opts.Logger,
		fsys:      opts.FS,
		health:    make(map[string]Alarm),
		spaceKick: make(chan struct{}, 1),
		stopSync:  make(chan struct{}),
		syncDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}
	s.sync = &syncer{fsys: opts.FS, parallel: opts.SyncParallelism, remove: s.removeFile, alarm: s.alarm, log: s.log}
	return s
}

// startSyncer runs the sync rounds until Close, through an io_uring ring
// where the store writes the operating system's files, the sync method
// allows it and so does the kernel; with SyncIOURing a kernel that
// refuses it is an error. The ring is opened here, once nothing else can
// fail, and runSyncer closes it when the rounds end.
func (s *Store) startSyncer() error {
	if _, ok := s.opts.FS.(OSFS); ok && s.opts.SyncMethod != SyncFdatasync {
		openRing := s.opts.openRing
		if openRing == nil {
			openRing = func(entries int) (fileSyncer, error) { return uring.New(entries) }
		}
		ring, err := openRing(s.opts.SyncParallelism)
		switch {
		case err == nil:
			s.sync.ring = ring
		case s.opts.SyncMethod == SyncIOURing:
			return fmt.Errorf("sync_method %q: the kernel refuses io_uring: %w", SyncIOURing, err)
		default:
			// worth knowing where CPU matters: a container's seccomp
			// profile is the usual cause
			s.log.Info("sync rounds call fdatasync themselves: io_uring unavailable", "err", err)
		}
	}
	go s.runSyncer(s.opts.SyncInterval, s.stopSync, s.syncDone)
	return nil
}

// Close ends Run, makes what the Writers wrote durable, indexes it and
// closes the index; it is idempotent. Writers must be closed first; a
// Writer still open leaves its segment open, which the next Open recovers.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	select {
	case <-s.stopSync:
	default:
		close(s.stopSync)
	}
	<-s.syncDone
	if s.remote() {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close storage index: %w", err)
	}
	return nil
}

// commitUpdates applies one round of index changes in one transaction.
// After a failed transaction it first reopens index.db: a file system
// that went bad and came back (a remount) leaves bbolt's mapping dead
// until then. The segments of failed rounds were kept queued by the
// syncer, so the reopened index gets every durable part.
func (s *Store) commitUpdates(us []indexUpdate) error {
	if reopened, err := s.db.Reopen(); err != nil {
		return fmt.Errorf("reopen index: %w", err)
	} else if reopened {
		s.log.Info("storage index reopened after a failure", "path", s.db.Path())
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for i := range us {
			u := &us[i]
			if u.delete {
				if err := deleteEntry(tx, u.camera, u.e.Start); err != nil {
					return err
				}
				continue
			}
			if err := putEntry(tx, u.camera, &u.e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.opts.Dir }

// SegmentPath is the absolute path of a segment's file.
func (s *Store) SegmentPath(seg Segment) string {
	return filepath.Join(s.opts.Dir, filepath.FromSlash(seg.File))
}

// alarm records a and hands it to OnAlarm.
func (s *Store) alarm(a Alarm) {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	s.mu.Lock()
	s.health[a.Kind] = a
	s.mu.Unlock()
	if a.Kind == AlarmRecovered || a.Kind == AlarmRecovery {
		s.log.Info("storage alarm", "kind", a.Kind, "camera", a.Camera, "err", a.Err)
	} else {
		s.log.Error("storage alarm", "kind", a.Kind, "camera", a.Camera, "err", a.Err)
	}
	if s.opts.OnAlarm != nil {
		s.opts.OnAlarm(a)
	}
}

// Health returns the last alarm of each kind, for the status page.
func (s *Store) Health() map[string]Alarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Alarm, len(s.health))
	for k, v := range s.health {
		out[k] = v
	}
	return out
}

// Cameras lists the camera ids that have footage, sorted.
func (s *Store) Cameras() ([]string, error) {
	var cams []string
	err := s.dbView(func(tx *bolt.Tx) error {
		return forEachCamera(tx, func(camera string, b *bolt.Bucket) error {
			if k, _ := b.Cursor().First(); k != nil {
				cams = append(cams, camera)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	sort.Strings(cams)
	return cams, nil
}

// maxLookBack bounds how many entries before from Segments inspects for
// one that started earlier but still overlaps the range.
const maxLookBack = 8

// Segments returns the segments of camera overlapping [from, to), in time
// order. Open segments report the end of the footage flushed so far.
func (s *Store) Segments(camera string, from, to time.Time) ([]Segment, error) {
	var out []Segment
	fromNs, toNs := from.UnixNano(), to.UnixNano()
	err := s.dbView(func(tx *bolt.Tx) error {
		root := tx.Bucket(camerasBucket)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(camera))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		// step back over entries that start before from but may reach it
		k, _ := c.Seek(timeKey(fromNs))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		first := timeKey(fromNs)
		for i := 0; k != nil && i < maxLookBack; i++ {
			first = append(first[:0], k...)
			k, _ = c.Prev()
		}
		for k, v := c.Seek(first); k != nil; k, v = c.Next() {
			if keyTime(k) >= toNs {
				break
			}
			e, err := decodeEntry(v)
			if err != nil {
				s.log.Warn("skipping bad index entry", "camera", camera, "err", err)
				continue
			}
			if e.Deleting || e.End <= fromNs {
				continue
			}
			out = append(out, e.segment(camera))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("segments of %s: %w", camera, err)
	}
	return out, nil
}

// Span is a stretch of contiguous footage recorded by one server.
type Span struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	RecordedBy string    `json:"recorded_by"`
}

// SpanGap is the largest gap between one segment's end and the next one's
// start that Spans still treats as contiguous.
const SpanGap = 1500 * time.Millisecond

// Spans merges the segments of camera overlapping [from, to) into
// contiguous spans; a gap over SpanGap or a change of recording server
// starts a new span. Spans are clipped to [from, to).
func (s *Store) Spans(camera string, from, to time.Time) ([]Span, error) {
	segs, err := s.Segments(camera, from, to)
	if err != nil {
		return nil, err
	}
	var out []Span
	for _, seg := range segs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.RecordedBy == seg.RecordedBy && seg.Start.Sub(last.End) <= SpanGap {
				if seg.End.After(last.End) {
					last.End = seg.End
				}
				continue
			}
		}
		out = append(out, Span{Start: seg.Start, End: seg.End, RecordedBy: seg.RecordedBy})
	}
	for i := range out {
		if out[i].Start.Before(from) {
			out[i].Start = from
		}
		if out[i].End.After(to) {
			out[i].End = to
		}
	}
	return out, nil
}

// deleteSegment removes a segment in an order a crash cannot corrupt: mark
// the entry deleting, remove the file, then delete the entry. Recovery
// finishes whatever a crash interrupted.
func (s *Store) deleteSegment(camera string, e *entry) error {
	marked := *e
	marked.Deleting = true
	marked.Open = false
	if err := s.db.Update(func(tx *bolt.Tx) error { return putEntry(tx, camera, &marked) }); err != nil {
		if !isDiskFull(err) {
			return fmt.Errorf("mark %s deleting: %w", e.File, err)
		}
		// A full disk may refuse the index the page it needs to mark the
		// entry; the space must be freed anyway. Until the entry is
		// deleted it names a missing file, which readers skip and
		// recovery drops.
		s.log.Warn("index full, deleting segment before marking it", "file", e.File)
	}
	if err := s.removeFile(e.File); err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return deleteEntry(tx, camera, e.Start) }); err != nil {
		return fmt.Errorf("delete index entry %s: %w", e.File, err)
	}
	return nil
}

// removeFile deletes a segment file (missing is fine) and then its date
// folder if that became empty.
func (s *Store) removeFile(rel string) error {
	p := filepath.Join(s.opts.Dir, filepath.FromSlash(rel))
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove segment %s: %w", rel, err)
	}
	os.Remove(filepath.Dir(p)) //nolint:errcheck // fails while the folder holds other segments
	return nil
}
