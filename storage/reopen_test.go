package storage

import (
	"os"
	"sync"
	"testing"
	"time"
)

// TestIndexReopenedAfterFileFailure breaks index.db under bbolt (its
// descriptor closed, as a file system gone bad and remounted leaves it)
// while a camera records: commits fail, the footage stays on disk and
// queued, and the next round reopens the index and claims all of it,
// without a restart.
func TestIndexReopenedAfterFileFailure(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	var mu sync.Mutex
	var files []*os.File
	st := openTestStore(t, dir, func(o *Options) {
		o.Segment, o.Part = 2*time.Second, 500*time.Millisecond
		o.SyncInterval = time.Hour // rounds run when the test says
		o.openIndexFile = func(p string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(p, flag, mode)
			mu.Lock()
			files = append(files, f)
			mu.Unlock()
			return f, err
		}
	})
	w, err := st.Begin(Stream{Camera: "rec-a/door", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	samples := c.stream(testEpoch, 3, true)
	half := len(samples) / 2
	writeAll(t, w, samples[:half])
	if err := st.Sync(); err != nil {
		t.Fatalf("round before the failure: %v", err)
	}
	before := allSegments(t, st, "rec-a/door")

	mu.Lock()
	files[0].Close() // the file goes bad under bbolt
	mu.Unlock()
	writeAll(t, w, samples[half:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err == nil {
		t.Fatal("a commit to the broken index succeeded")
	}
	if err := st.Sync(); err != nil {
		t.Fatalf("round after the failure did not reopen the index: %v", err)
	}
	mu.Lock()
	opened := len(files)
	mu.Unlock()
	if opened != 2 {
		t.Errorf("index.db opened %d times, want 2 (the reopen)", opened)
	}
	segs := checkConsistent(t, st, dir)
	if len(segs) <= len(before) {
		t.Fatalf("%d segments indexed after the reopen, %d before the failure", len(segs), len(before))
	}
	last := samples[len(samples)-1]
	if end := segs[len(segs)-1].End; end.Before(last.Arrival.Add(-time.Second)) {
		t.Errorf("index ends at %v, footage at %v: the parts written while the index was broken are missing", end, last.Arrival)
	}
}
