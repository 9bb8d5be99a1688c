package node

import (
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testfootage"
)

// TestDurableRun: the make-before-break input reads the index: the
// stretch of this server's footage since the pipeline started that runs
// without a hole up to the newest part.
func TestDurableRun(t *testing.T) {
	n := newTestNode(t)
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	near := func(got, want time.Time) bool { return got.Sub(want).Abs() < 150*time.Millisecond }

	if from, to := n.durableRun("rec-a/cam1", t0); !from.IsZero() || !to.IsZero() {
		t.Fatalf("no footage: got %v..%v", from, to)
	}
	testfootage.Write(t, "..", n.store, "rec-a/cam1", t0, 3*time.Second)
	testfootage.Write(t, "..", n.store, "rec-a/cam1", t0.Add(3*time.Second), 3*time.Second)
	if from, to := n.durableRun("rec-a/cam1", t0.Add(-time.Second)); !near(from, t0) || !near(to, t0.Add(6*time.Second)) {
		t.Fatalf("two contiguous segments: %v..%v, want %v..%v", from, to, t0, t0.Add(6*time.Second))
	}
	// Footage from before the pipeline started is another run.
	if from, _ := n.durableRun("rec-a/cam1", t0.Add(time.Second)); !near(from, t0.Add(3*time.Second)) {
		t.Fatalf("run started after the first segment: from %v, want %v", from, t0.Add(3*time.Second))
	}
	// A reconnect's hole: the current stretch starts after it.
	testfootage.Write(t, "..", n.store, "rec-a/cam1", t0.Add(8*time.Second), 3*time.Second)
	if from, to := n.durableRun("rec-a/cam1", t0.Add(-time.Second)); !near(from, t0.Add(8*time.Second)) || !near(to, t0.Add(11*time.Second)) {
		t.Fatalf("after a hole: %v..%v, want %v..%v", from, to, t0.Add(8*time.Second), t0.Add(11*time.Second))
	}
	// Another camera's footage does not count.
	if from, _ := n.durableRun("rec-a/cam2", t0.Add(-time.Second)); !from.IsZero() {
		t.Fatalf("rec-a/cam2 has no footage, got from %v", from)
	}
}
