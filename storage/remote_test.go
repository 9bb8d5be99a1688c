package storage

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// A store without an index (a worker process) writes the files; its
// updates, carried as JSON, make the index owner's store agree with disk.
// A worker killed mid-segment leaves an open entry and an unindexed file:
// RecoverCameras closes and indexes them from the files.
func TestRemoteStoreFeedsTheIndexOwner(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	owner := openTestStore(t, dir, nil)

	var mu sync.Mutex
	var wire [][]byte
	worker := openTestStore(t, dir, func(o *Options) {
		o.Commit = func(us []IndexUpdate) error {
			b, err := json.Marshal(us)
			mu.Lock()
			wire = append(wire, b)
			mu.Unlock()
			return err
		}
	})
	if _, err := worker.Cameras(); err != nil {
		t.Fatal(err)
	}
	deliver := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range wire {
			var us []IndexUpdate
			if err := json.Unmarshal(b, &us); err != nil {
				t.Fatal(err)
			}
			if err := owner.Apply(us); err != nil {
				t.Fatal(err)
			}
		}
		wire = nil
	}

	w, err := worker.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, c.stream(testEpoch, 1, true))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := worker.Sync(); err != nil {
		t.Fatal(err)
	}
	deliver()
	segs := checkConsistent(t, owner, dir)
	if len(segs) != 3 {
		t.Fatalf("owner indexes %d segments, want 3: %+v", len(segs), segs)
	}
	if total := segs[2].End.Sub(segs[0].Start); total < 9900*time.Millisecond {
		t.Fatalf("indexed %v of 10s", total)
	}

	// the worker dies with a segment open: some updates never arrive
	later := testEpoch.Add(time.Minute)
	w, err = worker.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	samples := c.stream(later, 1, true)
	writeAll(t, w, samples[:len(samples)/3])
	worker.Sync()
	deliver()
	writeAll(t, w, samples[len(samples)/3:])
	worker.Sync() // written and synced, never delivered: the worker is gone
	mu.Lock()
	wire = nil
	mu.Unlock()
	open := allSegments(t, owner, "rec-a/lobby")
	if n := len(open); n != 4 || !open[3].Open {
		t.Fatalf("before recovery: %+v", open)
	}
	if err := owner.RecoverCameras([]string{"rec-a/lobby"}); err != nil {
		t.Fatal(err)
	}
	segs = allSegments(t, owner, "rec-a/lobby")
	if len(segs) != 6 {
		t.Fatalf("after recovery %d segments, want 6 (3 + 3 from the files): %+v", len(segs), segs)
	}
	for _, s := range segs {
		if s.Open {
			t.Fatalf("open after recovery: %+v", s)
		}
	}
	if total := segs[5].End.Sub(segs[3].Start); total < 8900*time.Millisecond {
		t.Fatalf("recovery indexed %v of the dead worker's 10s", total)
	}
}

// When retention finds only open segments on a disk below its floor it
// asks the Writers to cut them, its own through CutSegments and those of
// other processes (workers) through OnCut, at most every cutPause.
func TestRetentionAsksWorkersToCut(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	cuts := 0
	st := openTestStore(t, dir, func(o *Options) {
		o.MinFreeBytes = 1 << 40 // never reached
		o.StatFS = func(string) (uint64, uint64, error) { return 1 << 20, 1 << 30, nil }
		o.OnCut = func() { cuts++ }
		o.SyncInterval = time.Hour // no checkSpace of the syncer's own meanwhile
	})
	w, err := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	samples := c.stream(testEpoch, 1, true)
	writeAll(t, w, samples[:len(samples)/4])
	st.Sync()
	gen := st.cutGen.Load()
	if _, err := st.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	if cuts != 1 || st.cutGen.Load() != gen+1 {
		t.Fatalf("after a pass with only an open segment: %d OnCut calls, cut generation +%d; want 1 and +1", cuts, st.cutGen.Load()-gen)
	}
	st.EnforceRetention(time.Now())
	if cuts != 1 {
		t.Fatalf("asked again within %v: %d calls", cutPause, cuts)
	}
}
