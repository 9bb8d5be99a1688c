package live

import (
	"sync/atomic"
	"testing"
)

// TestViewerLimitChanges: a ViewerLimit read at each viewer follows a
// config reload: raised, the next viewer gets in; lowered, viewers
// already watching stay and the next is refused.
func TestViewerLimitChanges(t *testing.T) {
	var limit atomic.Int64
	limit.Store(1)
	r := startRig(t, Options{MaxViewers: 100, ViewerLimit: func() int { return int(limit.Load()) }})
	play := func() int {
		t.Helper()
		code, err := dialViewer(t, r.live.Addr()).play(r.url())
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := play(); code != 200 {
		t.Fatalf("first viewer: %d", code)
	}
	if code := play(); code != 453 {
		t.Fatalf("second viewer over a limit of 1: %d, want 453 (ViewerLimit overrides MaxViewers)", code)
	}
	limit.Store(2)
	if code := play(); code != 200 {
		t.Fatalf("second viewer after raising the limit to 2: %d", code)
	}
	limit.Store(1)
	if code := play(); code != 453 {
		t.Fatalf("third viewer after lowering the limit to 1: %d, want 453", code)
	}
	if n := r.live.Viewers(); n != 2 {
		t.Errorf("Viewers() = %d after lowering the limit, want the 2 already watching", n)
	}
}
