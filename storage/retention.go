package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// statFS reports free (available to unprivileged users) and total bytes of
// the file system holding dir.
func statFS(dir string) (free, total uint64, err error) {
	var sf unix.Statfs_t
	if err := unix.Statfs(dir, &sf); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return sf.Bavail * uint64(sf.Bsize), sf.Blocks * uint64(sf.Bsize), nil
}

// EnforceRetention deletes closed segments, oldest first across all
// cameras, while they are older than Retention or while free space is
// below the MinFree floors. Open segments are never deleted. If the floor
// cannot be reached a disk_low alarm is raised (once, until free space is
// back above the floor).
func (s *Store) EnforceRetention(now time.Time) (deleted int, err error) {
	return s.enforceRetention(now, false)
}

// spaceMargin is how much free space beyond the floor retention makes
// when a write met a full disk, so that the next write does not meet it
// again at once.
func spaceMargin(total uint64) uint64 { return max(total/100, 1<<20) }

// cutPause is the least time between two requests that every Writer cut
// its segment so retention can delete it.
const cutPause = 5 * time.Second

// floor is the free-space floor in bytes on a file system of total bytes.
func (s *Store) floor(total uint64) uint64 {
	floor := uint64(max(s.opts.MinFreeBytes, 0))
	if f := uint64(s.opts.MinFreeFraction * float64(total)); f > floor {
		floor = f
	}
	return floor
}

// requestSpace asks the syncer goroutine to free space now.
func (s *Store) requestSpace() {
	select {
	case s.spaceKick <- struct{}{}:
	default:
	}
}

// makeRoom frees space for a write of camera that met a full disk, on the
// writer's goroutine, and reports whether it freed any, that is whether
// writing the rest may succeed. The round first indexes what was closed
// since the last one, so that it can be deleted. Only this camera waits,
// and only on a full disk; without it, the samples of the refused write
// were lost whenever retention was late, and the camera went on only
// from its next keyframe. A store without an index (a worker) cannot
// delete: it has the index owner's retention run (Options.NeedSpace) and
// waits for free space to grow.
func (s *Store) makeRoom(camera string) bool {
	before, _, _ := s.opts.StatFS(s.opts.Dir)
	if s.remote() {
		return s.awaitRoom(camera, before)
	}
	s.sync.round() //nolint:errcheck // a failed round alarms its cameras; retention must run anyway
	n, err := s.enforceRetention(time.Now(), true)
	if err != nil {
		// A full disk may refuse the index commit that ends a deletion
		// whose file is gone: free space says whether it freed any.
		s.log.Error("retention failed", "err", err)
	}
	after, _, _ := s.opts.StatFS(s.opts.Dir)
	if n == 0 && after <= before {
		return false
	}
	s.log.Warn("disk full: retention freed space and the write goes on", "camera", camera, "deleted", n, "free_bytes", after)
	return true
}

// awaitRoom asks the index owner to free space and waits, up to
// SpaceWait, for free space to grow beyond before.
func (s *Store) awaitRoom(camera string, before uint64) bool {
	if s.opts.NeedSpace == nil {
		return false
	}
	s.sync.round() //nolint:errcheck // what closed since the last round must reach the index to be deletable
	s.opts.NeedSpace()
	deadline := time.Now().Add(s.opts.SpaceWait)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if free, _, err := s.opts.StatFS(s.opts.Dir); err == nil && free > before {
			s.log.Warn("disk full: the index owner freed space and the write goes on", "camera", camera, "free_bytes", free)
			return true
		}
	}
	return false
}

// RequestSpace asks the store to free space at once, as after one of its
// own writes met a full disk: the supervisor calls it when a worker's
// did, instead of waiting for the next check of free space.
func (s *Store) RequestSpace() { s.requestSpace() }

// checkSpace runs retention when free space fell below the floor: a
// statfs each round is cheap, and waiting for the next retention pass lets
// a busy server fill the disk.
func (s *Store) checkSpace() {
	if s.opts.MinFreeBytes <= 0 && s.opts.MinFreeFraction <= 0 {
		return
	}
	free, total, err := s.opts.StatFS(s.opts.Dir)
	if err != nil || free >= s.floor(total) {
		return
	}
	s.freeSpace(false)
}

// freeSpace runs retention; after a full-disk error it frees the margin
// beyond the floor too.
func (s *Store) freeSpace(full bool) {
	n, err := s.enforceRetention(time.Now(), full)
	if err != nil {
		s.log.Error("retention failed", "err", err)
	} else if n > 0 {
		s.log.Info("retention freed space", "deleted", n, "after_disk_full", full)
	}
}

func (s *Store) enforceRetention(now time.Time, withMargin bool) (deleted int, err error) {
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()
	type cand struct {
		camera string
		e      entry
	}
	var cands []cand
	if s.remote() {
		return 0, nil // the index owner runs retention
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		return forEachCamera(tx, func(camera string, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				e, err := decodeEntry(v)
				if err != nil || e.Open || e.Deleting {
					return nil
				}
				e.Start = keyTime(k)
				cands = append(cands, cand{camera: camera, e: e})
				return nil
			})
		})
	})
	if err != nil {
		return 0, fmt.Errorf("retention: read index: %w", err)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].e.Start < cands[j].e.Start })

	var need uint64 // bytes to free to reach the floor
	spaceChecked := s.opts.MinFreeBytes > 0 || s.opts.MinFreeFraction > 0 || withMargin
	if spaceChecked {
		free, total, err := s.opts.StatFS(s.opts.Dir)
		if err != nil {
			return 0, fmt.Errorf("retention: %w", err)
		}
		floor := s.floor(total)
		if withMargin {
			floor += spaceMargin(total)
		}
		if free < floor {
			need = floor - free
		}
	}

	cutoff := int64(-1 << 63)
	if s.opts.Retention > 0 {
		cutoff = now.Add(-s.opts.Retention).UnixNano()
	}
	var errs []error
	for _, c := range cands {
		expired := c.e.End < cutoff
		if !expired && need == 0 {
			continue
		}
		if err := s.deleteSegment(c.camera, &c.e); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
		s.log.Debug("retention deleted segment", "camera", c.camera, "file", c.e.File, "expired", expired)
		if need > uint64(c.e.Bytes) {
			need -= uint64(c.e.Bytes)
		} else {
			need = 0
		}
	}
	s.mu.Lock()
	wasLow := s.diskLow
	s.diskLow = need > 0
	cut := need > 0 && now.Sub(s.lastCut) >= cutPause
	if cut {
		s.lastCut = now
	}
	s.mu.Unlock()
	if cut {
		// What is left is open segments: have every Writer close its
		// segment at the next keyframe, so the next pass can delete the
		// oldest footage instead of the disk staying full.
		s.CutSegments()
		if s.opts.OnCut != nil {
			s.opts.OnCut() // writers in other processes (workers)
		}
	}
	if need > 0 && !wasLow { // once per episode, not every interval
		s.alarm(Alarm{Kind: AlarmDiskLow, Time: now, Err: fmt.Sprintf(
			"free space below the floor in %s and no closed segment left to delete (%d bytes short)", s.opts.Dir, need)})
	}
	if len(errs) > 0 {
		return deleted, fmt.Errorf("retention: %w", errors.Join(errs...))
	}
	return deleted, nil
}

// Run enforces retention every RetentionInterval until ctx ends (it
// returns ctx.Err()) or the Store is closed (it returns nil).
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return nil
		default:
		}
		if n, err := s.EnforceRetention(time.Now()); err != nil {
			s.log.Error("retention failed", "err", err)
		} else if n > 0 {
			s.log.Info("retention deleted segments", "count", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return nil
		case <-t.C:
		}
	}
}
