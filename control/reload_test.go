package control

import (
	"slices"
	"testing"
	"time"
)

// reload gives server name a new configuration, as node/ does when its
// config file is reloaded: Config.Self changes from the next step on, and
// its record (what peers plan from) carries it under a new version.
func (w *world) reload(name string, r Record) {
	w.servers[name].rec = r
	pub := r
	old := w.pub[name]
	pub.Claims, pub.Recording, pub.Stable = old.Claims, old.Recording, old.Stable
	w.pub[name] = pub
	w.version[name]++
}

// TestReloadMovesMakeBeforeBreak: a reload that moves cameras between live
// servers goes through the rules a failback does. b holds a's cameras
// while a is down; b's capacity is cut to one camera by a reload, so one
// camera moves to c. b keeps recording it until c's record lists it, and
// at no step is a camera recorded by nobody. A camera removed from its
// home's config stops at once: nobody is planned to record it.
func TestReloadMovesMakeBeforeBreak(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b", "c"}, 0, "cam1", "cam2"), rec("b", []string{"a"}, 0), rec("c", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	w.run(3 * time.Second)
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("b records %v after a failed, want both of a's cameras", got)
	}

	w.reload("b", rec("b", []string{"a"}, 1))
	sawRelease := false
	for end := w.now.Add(3 * time.Second); w.now.Before(end); {
		w.round()
		for _, id := range []string{"a/cam1", "a/cam2"} {
			if !w.pipes["b"][id] && !w.pipes["c"][id] {
				t.Fatalf("%s: %s is recorded by nobody during the move (b %v, c %v)", w.now.Sub(t0), id, w.pipes["b"], w.pipes["c"])
			}
		}
		if len(w.servers["b"].act.Releasing) > 0 {
			sawRelease = true
			for id, to := range w.servers["b"].act.Releasing {
				if to != "c" || !slices.Contains(w.recording("b"), id) {
					t.Fatalf("b releases %s to %q without recording it meanwhile: %+v", id, to, w.servers["b"].act)
				}
			}
		}
	}
	if !sawRelease {
		t.Error("the move never went through Releasing (make before break)")
	}
	b, c := w.recording("b"), w.recording("c")
	if len(b) != 1 || len(c) != 1 || b[0] == c[0] {
		t.Fatalf("after the reload b records %v and c %v, want one camera each", b, c)
	}

	// b's own camera removed by a reload stops at once (no new owner).
	w.reload("b", rec("b", []string{"a"}, 0, "cam9"))
	w.run(time.Second)
	if !slices.Contains(w.recording("b"), "b/cam9") {
		t.Fatalf("camera added by a reload not recorded: %v", w.recording("b"))
	}
	w.reload("b", rec("b", []string{"a"}, 0))
	w.step("b")
	if slices.Contains(w.recording("b"), "b/cam9") || len(w.servers["b"].act.Releasing) != 0 {
		t.Fatalf("removed camera still recorded or released: %+v", w.servers["b"].act)
	}
}
