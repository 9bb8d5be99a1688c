package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buddyrec/buddyrec/internal/wallgrid"
)

// DefaultSyncParallelism bounds the fdatasync calls of one round in flight
// at once (Options.SyncParallelism): enough for the file system to merge
// them into few journal commits, few enough not to flood the disk queue.
const DefaultSyncParallelism = 16

// syncedFile is one segment file between its Writer, which writes to it,
// and the syncer, which makes what was written durable and then indexes
// it. The Writer never waits for the disk; the index never names data the
// disk may not hold.
type syncedFile struct {
	f      File
	camera string
	// failed is set when a sync failed: what the kernel held may be lost,
	// so the Writer abandons the segment and starts a new one.
	failed atomic.Bool

	// guarded by syncer.mu
	queued    bool
	dirs      []string // folders to sync before the first commit naming the file
	e         entry    // what the index should say once the data is durable
	closing   bool     // the Writer is done: close f after its last sync
	discard   bool     // no footage: delete the entry and the file
	closed    bool     // f is closed (after a successful final sync)
	committed *entry   // the last entry committed: durable by construction
}

// indexUpdate is one change to the index a round commits.
type indexUpdate struct {
	camera string
	e      entry
	delete bool
}

// syncer makes footage durable in rounds, one per sync interval for all
// cameras of a store: it syncs every folder and file written since the
// last round, in parallel, and then commits the index entries covering
// them in one transaction. A Writer only notes what it wrote; it never
// waits for a sync.
type syncer struct {
	fsys     FS
	parallel int                       // fdatasync calls in flight at once (Options.SyncParallelism)
	commit   func([]indexUpdate) error // one transaction
	remove   func(rel string) error    // a discarded segment's file
	alarm    func(Alarm)
	log      *slog.Logger
	// ring syncs the operating system's files of a round at once
	// (*uring.Ring): nil where the kernel refuses io_uring, or after the
	// ring failed once; the round then calls fdatasync itself. Only a
	// round touches it, under roundMu.
	ring fileSyncer

	mu      sync.Mutex
	pending []*syncedFile
	failing bool // the last commit failed (one alarm per streak)

	roundMu sync.Mutex // one round at a time
}

// note records that sf's data up to e is written and should be indexed as
// e once durable.
func (s *syncer) note(sf *syncedFile, e entry) {
	s.mu.Lock()
	sf.e = e
	s.queueLocked(sf)
	s.mu.Unlock()
}

// finish hands sf over for its last round: its data is synced, f closed,
// and e (closed) committed, or, with discard, the entry and file removed.
func (s *syncer) finish(sf *syncedFile, e entry, discard bool) {
	s.mu.Lock()
	sf.e = e
	sf.closing = true
	sf.discard = discard
	s.queueLocked(sf)
	s.mu.Unlock()
}

func (s *syncer) queueLocked(sf *syncedFile) {
	if !sf.queued {
		sf.queued = true
		s.pending = append(s.pending, sf)
	}
}

// fileSyncer makes many files of the operating system durable at once:
// *uring.Ring. Fdatasync puts each file's result in errs and returns an
// error only when the syncer itself failed, after marking with that same
// error every file whose sync did not complete.
type fileSyncer interface {
	Fdatasync(fds []int, errs []error, parallel int) error
	Close() error
}

type roundItem struct {
	sf               *syncedFile
	e                entry
	dirs             []string
	closing, discard bool
	closed           bool
	err              error
}

// round syncs and indexes everything noted so far. It returns the commit
// error, if any; sync failures are alarmed per file.
func (s *syncer) round() error {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()

	s.mu.Lock()
	items := make([]roundItem, len(s.pending))
	for i, sf := range s.pending {
		items[i] = roundItem{sf: sf, e: sf.e, dirs: sf.dirs, closing: sf.closing, discard: sf.discard, closed: sf.closed}
		sf.queued = false
		sf.dirs = nil
	}
	s.pending = nil
	s.mu.Unlock()
	if len(items) == 0 {
		return nil
	}

	// Folders first (each once), then files, a bounded number at a time.
	dirErr := map[string]error{}
	for _, it := range items {
		for _, d := range it.dirs {
			if _, done := dirErr[d]; !done {
				dirErr[d] = s.fsys.SyncDir(d)
			}
		}
	}
	toSync := make([]int, 0, len(items))
	for i := range items {
		it := &items[i]
		for _, d := range it.dirs {
			if err := dirErr[d]; err != nil {
				it.err = fmt.Errorf("sync folder %s: %w", d, err)
			}
		}
		if !it.closed && it.err == nil {
			toSync = append(toSync, i)
		}
	}
	if s.ring != nil {
		toSync = s.syncThroughRing(items, toSync)
	}
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	for _, i := range toSync {
		it := &items[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := it.sf.f.Sync(); err != nil {
				it.err = fmt.Errorf("sync segment %s: %w", it.e.File, err)
			}
		}()
	}
	wg.Wait()

	updates := make([]indexUpdate, 0, len(items))
	for i := range items {
		it := &items[i]
		sf := it.sf
		if it.closing && !it.closed {
			if err := sf.f.Close(); err != nil && it.err == nil {
				it.err = fmt.Errorf("close segment %s: %w", it.e.File, err)
			}
			s.mu.Lock()
			sf.closed = true
			s.mu.Unlock()
		}
		if it.err != nil {
			// The kernel may have dropped the data: never claim it. A
			// segment being closed is closed at what was durable before.
			sf.failed.Store(true)
			s.alarm(Alarm{Kind: kindOf(it.err), Camera: sf.camera, Err: it.err.Error()})
			if it.closing && sf.committed != nil {
				e := *sf.committed
				e.Open = false
				updates = append(updates, indexUpdate{camera: sf.camera, e: e})
			}
			continue
		}
		updates = append(updates, indexUpdate{camera: sf.camera, e: it.e, delete: it.discard})
	}
	if len(updates) == 0 {
		return nil
	}
	if err := s.commit(updates); err != nil {
		// The data is durable; claim it in a later round.
		s.mu.Lock()
		for i := range items {
			if items[i].err == nil {
				s.queueLocked(items[i].sf)
			}
		}
		first := !s.failing
		s.failing = true
		s.mu.Unlock()
		err = fmt.Errorf("index commit: %w", err)
		if first {
			s.alarm(Alarm{Kind: kindOf(err), Err: err.Error()})
		}
		return err
	}
	s.mu.Lock()
	recovered := s.failing
	s.failing = false
	for i := range items {
		it := &items[i]
		if it.err == nil {
			e := it.e
			it.sf.committed = &e
		}
	}
	s.mu.Unlock()
	if recovered {
		s.alarm(Alarm{Kind: AlarmRecovered, Err: "index commits succeed again"})
	}
	var errs []error
	for _, it := range items {
		if it.err == nil && it.discard {
			if err := s.remove(it.e.File); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		s.log.Warn("remove empty segment", "err", errors.Join(errs...))
	}
	return nil
}

// syncThroughRing syncs the operating system's files among items[i] for
// i in toSync through s.ring, all submitted at once (at most s.parallel
// in flight), and returns the indices it left to the caller: files of
// another file layer, and, if the ring itself failed, every file whose
// sync did not complete (synced again the usual way: a second fdatasync
// is harmless). A ring that failed is not used again.
func (s *syncer) syncThroughRing(items []roundItem, toSync []int) []int {
	rest := toSync[:0:0]
	fds := make([]int, 0, len(toSync))
	idx := make([]int, 0, len(toSync))
	for _, i := range toSync {
		if f, ok := items[i].sf.f.(osFile); ok {
			fds = append(fds, int(f.Fd()))
			idx = append(idx, i)
		} else {
			rest = append(rest, i)
		}
	}
	if len(fds) == 0 {
		return rest
	}
	errs := make([]error, len(fds))
	ringErr := s.ring.Fdatasync(fds, errs, s.parallel)
	for k, i := range idx {
		it := &items[i]
		switch err := errs[k]; {
		case ringErr != nil && err == ringErr:
			rest = append(rest, i)
		case err != nil:
			f := it.sf.f.(osFile)
			it.err = fmt.Errorf("sync segment %s: %w", it.e.File, &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err})
		}
	}
	if ringErr != nil {
		s.log.Warn("io_uring failed: syncing with fdatasync from now on", "err", ringErr)
		s.ring.Close() //nolint:errcheck // no longer used either way
		s.ring = nil
	}
	return rest
}

// kindOf is the alarm kind of a failed write.
func kindOf(err error) string {
	if isDiskFull(err) {
		return AlarmDiskFull
	}
	return AlarmWriteError
}

// runSyncer runs a round every interval until stop closes, then a last
// one.
func (s *Store) runSyncer(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer s.sync.closeRing()
	// on the process's wall-clock grid, where the recorder's reads and
	// watches wake it anyway (see wallgrid)
	t := time.NewTimer(wallgrid.Until(interval))
	defer t.Stop()
	for {
		select {
		case <-stop:
			if err := s.sync.round(); err != nil {
				s.log.Error("final index commit failed", "err", err)
			}
			return
		case <-t.C:
			t.Reset(wallgrid.Until(interval))
			if err := s.sync.round(); err != nil {
				s.log.Debug("sync round", "err", err)
			}
			s.checkSpace()
		case <-s.spaceKick:
			s.sync.round() //nolint:errcheck // alarmed; retention must run anyway
			s.freeSpace(true)
		}
	}
}

// closeRing releases the ring once no round can run any more.
func (s *syncer) closeRing() {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	if s.ring != nil {
		s.ring.Close() //nolint:errcheck // nothing left to sync through it
		s.ring = nil
	}
}

// Sync makes everything written so far durable and indexed now instead of
// at the next round: tests and a clean shutdown use it.
func (s *Store) Sync() error { return s.sync.round() }
