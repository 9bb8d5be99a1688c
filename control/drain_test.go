package control

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// drainWorld is a stable site: a records cam1 and cam2 with buddy b.
func drainWorld(t *testing.T, bCapacity int, aFailback bool) *world {
	ra := rec("a", []string{"b"}, 0, "cam1", "cam2")
	ra.Failback = aFailback
	w := newWorld(t, ra, rec("b", []string{"a"}, bCapacity))
	w.run(2 * testFailbackAfter)
	if got := w.recording("a"); !slices.Equal(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("a records %v before the drain", got)
	}
	return w
}

func (w *world) setMaintenance(name string, on bool) {
	s := w.servers[name]
	s.rec.Maintenance = on
	r := w.pub[name]
	r.Maintenance = on
	w.pub[name] = r
	w.version[name]++
}

// TestDrainHandsCamerasOver: a draining server hands every camera to the
// buddy make-before-break (it keeps each until the buddy's footage
// overlaps its own), announces the start, then once one notice naming
// each camera's new server.
func TestDrainHandsCamerasOver(t *testing.T) {
	w := drainWorld(t, 0, true)
	w.setMaintenance("a", true)
	var acts []Actions
	for range 40 {
		lastA := map[string]Footage{"a/cam1": w.footage("a", "a/cam1"), "a/cam2": w.footage("a", "a/cam2")}
		out := w.round()
		acts = append(acts, out["a"])
		for id, f := range lastA {
			if f.From.IsZero() || slices.Contains(out["a"].Cameras, id) {
				continue
			}
			b, ok := w.pub["b"].Durable[id]
			if !ok || f.To.Before(b.Add(DefaultHandoffOverlap)) {
				t.Fatalf("a stopped %s with its footage ending %v before b's (from %v) overlaps it", id, f.To, b)
			}
		}
	}
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("b records %v after the drain, want both cameras of a", got)
	}
	if got := w.recording("a"); len(got) != 0 {
		t.Fatalf("draining a still records %v", got)
	}
	if d := w.servers["a"].st.Drain; d == nil || !d.Complete || len(d.Kept) != 0 || d.Moved["a/cam1"] != "b" || d.Moved["a/cam2"] != "b" {
		t.Fatalf("drain status %+v, want complete, both moved to b, none kept", d)
	}
	evs := eventsOf(acts, TypeServerMaintenance)
	if len(evs) != 2 || !strings.Contains(evs[0].Text, "entered maintenance") {
		t.Fatalf("maintenance events %+v, want the start and the completion", evs)
	}
	ns := notices(acts, TypeServerMaintenance)
	if len(ns) != 1 || !maps.Equal(ns[0].Moved, map[string]string{"a/cam1": "b", "a/cam2": "b"}) || ns[0].FailedServer != "a" {
		t.Fatalf("maintenance notices %+v, want one naming b for both cameras", ns)
	}
	if ns := notices(acts, TypeServerDown); len(ns) != 0 {
		t.Fatalf("a drain raised server.down: %+v", ns)
	}
}

// TestDrainKeepsWhatCannotBePlaced: what the buddy has no room for stays
// on the draining server, and the notice and the status say so.
func TestDrainKeepsWhatCannotBePlaced(t *testing.T) {
	w := drainWorld(t, 1, true)
	w.setMaintenance("a", true)
	acts := all(w.run(10 * time.Second))
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1"}) {
		t.Fatalf("b records %v, want a/cam1 (capacity 1)", got)
	}
	if got := w.recording("a"); !slices.Equal(got, []string{"a/cam2"}) {
		t.Fatalf("a records %v, want the camera b has no room for", got)
	}
	d := w.servers["a"].st.Drain
	if d == nil || !d.Complete || !slices.Equal(d.Kept, []string{"a/cam2"}) {
		t.Fatalf("drain status %+v, want a/cam2 kept", d)
	}
	ns := notices(acts, TypeServerMaintenance)
	if len(ns) != 1 || !strings.Contains(ns[0].Text, "1 kept here") || ns[0].Moved["a/cam1"] != "b" {
		t.Fatalf("maintenance notices %+v", ns)
	}
}

// TestDrainingServerIsNoFailoverTarget: a draining server adopts nothing
// while another buddy can.
func TestDrainingServerIsNoFailoverTarget(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b", "c"}, 0, "cam1"), rec("b", nil, 0), rec("c", nil, 0))
	w.run(2 * testFailbackAfter)
	w.setMaintenance("b", true)
	w.run(time.Second)
	w.crash("a")
	w.run(3 * time.Second)
	if got := w.recording("c"); !slices.Equal(got, []string{"a/cam1"}) {
		t.Fatalf("c records %v, want a/cam1: b is in maintenance", got)
	}
	if got := w.recording("b"); len(got) != 0 {
		t.Fatalf("draining b adopted %v", got)
	}
}

// TestUndrainBringsCamerasBack: leaving maintenance brings the cameras
// back make-before-break, even with failback off, and the reclaim ends
// once they record at home.
func TestUndrainBringsCamerasBack(t *testing.T) {
	w := drainWorld(t, 0, false)
	w.setMaintenance("a", true)
	w.run(10 * time.Second)
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("b records %v after the drain", got)
	}
	w.setMaintenance("a", false)
	var acts []Actions
	for range 60 {
		lastB := map[string]Footage{"a/cam1": w.footage("b", "a/cam1"), "a/cam2": w.footage("b", "a/cam2")}
		out := w.round()
		acts = append(acts, out["a"])
		for id, f := range lastB {
			if f.From.IsZero() || slices.Contains(out["b"].Cameras, id) {
				continue
			}
			h, ok := w.pub["a"].Durable[id]
			if !ok || f.To.Before(h.Add(DefaultHandoffOverlap)) {
				t.Fatalf("b stopped %s before a's footage overlaps its own", id)
			}
		}
	}
	if got := w.recording("a"); !slices.Equal(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("a records %v after the undrain (failback off), want its cameras back", got)
	}
	if got := w.recording("b"); len(got) != 0 {
		t.Fatalf("b still records %v", got)
	}
	if w.pub["a"].Reclaim {
		t.Fatalf("a still reclaims once its cameras are home")
	}
	if w.servers["a"].st.Drain != nil {
		t.Fatalf("drain status kept after the undrain")
	}
	if ns := notices(acts, TypeServerMaintenanceEnded); len(ns) != 1 {
		t.Fatalf("maintenance_ended notices %+v, want one", ns)
	}
	if ns := notices(acts, TypeFailbackCompleted); len(ns) == 0 {
		t.Fatalf("no failback.completed notice once the cameras are home")
	}
	// With failback off and the reclaim over, the cameras stay sticky
	// again after a later failover.
	w.crash("a")
	w.run(3 * time.Second)
	w.restart("a")
	w.run(3 * testFailbackAfter)
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("after a crash with failback off b records %v, want both (sticky)", got)
	}
}

// TestCleanStopIsNoAlarm: a server that leaves the cluster is announced
// with server.stopped, no server.down alarm, and its buddy adopts.
func TestCleanStopIsNoAlarm(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	w.left["a"] = true
	acts := w.run(3 * time.Second)
	if ns := notices(acts["b"], TypeServerDown); len(ns) != 0 {
		t.Fatalf("a clean stop raised server.down: %+v", ns)
	}
	if es := eventsOf(acts["b"], TypeServerDown); len(es) != 0 {
		t.Fatalf("a clean stop logged server.down: %+v", es)
	}
	es := eventsOf(acts["b"], TypeServerStopped)
	if len(es) != 1 || es[0].Severity != SeverityInfo || es[0].About != "a" {
		t.Fatalf("server.stopped events %+v, want one info event about a", es)
	}
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1"}) {
		t.Fatalf("b records %v after a left", got)
	}
	// A crash is still an alarm.
	w.restart("a")
	w.left["a"] = false
	w.run(2 * testFailbackAfter)
	w.crash("a")
	acts = w.run(3 * time.Second)
	if ns := notices(acts["b"], TypeServerDown); len(ns) != 1 {
		t.Fatalf("a crash raised %d server.down notices, want 1", len(ns))
	}
}
