package control

import (
	"slices"
	"testing"
	"time"
)

// TestHandedOver: a camera moving away stops here only once the new
// owner's first durable frame lies at least HandoffOverlap inside this
// server's durable footage; a pipeline that records nothing here waits
// only for the owner's footage.
func TestHandedOver(t *testing.T) {
	first := t0.Add(10 * time.Second) // the owner's first durable frame
	overlap := DefaultHandoffOverlap
	for _, tc := range []struct {
		name    string
		durable map[string]time.Time // owner's record
		state   string               // this server's pipeline
		to      time.Time            // end of this server's durable footage
		want    bool
	}{
		{"owner has only a pipeline", nil, PipelineRecording, first.Add(time.Minute), false},
		{"owner's first frame zero", map[string]time.Time{"a/c": {}}, PipelineRecording, first.Add(time.Minute), false},
		{"nothing durable here yet", map[string]time.Time{"a/c": first}, PipelineRecording, time.Time{}, false},
		{"here ends before the owner starts", map[string]time.Time{"a/c": first}, PipelineRecording, first.Add(-time.Second), false},
		{"here ends at the owner's first frame", map[string]time.Time{"a/c": first}, PipelineRecording, first, false},
		{"overlap one tick short", map[string]time.Time{"a/c": first}, PipelineRecording, first.Add(overlap - time.Millisecond), false},
		{"overlap reached", map[string]time.Time{"a/c": first}, PipelineRecording, first.Add(overlap), true},
		{"overlap passed", map[string]time.Time{"a/c": first}, PipelineRecording, first.Add(5 * time.Second), true},
		{"another camera's footage", map[string]time.Time{"a/other": first}, PipelineRecording, first.Add(5 * time.Second), false},
		{"offline here, owner durable", map[string]time.Time{"a/c": first}, PipelineOffline, time.Time{}, true},
		{"connecting here, owner durable", map[string]time.Time{"a/c": first}, PipelineConnecting, time.Time{}, true},
		{"offline here, owner not durable", nil, PipelineOffline, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Inputs{Pipelines: []Pipeline{{ID: "a/c", State: tc.state}}}
			if !tc.to.IsZero() {
				in.Footage = map[string]Footage{"a/c": {From: t0, To: tc.to}}
			}
			if got := handedOver(in, Record{Name: "a", Durable: tc.durable}, "a/c"); got != tc.want {
				t.Fatalf("handedOver = %v, want %v", got, tc.want)
			}
		})
	}
	in := Inputs{Config: Config{HandoffOverlap: 2 * time.Second}, Pipelines: []Pipeline{{ID: "a/c", State: PipelineRecording}},
		Footage: map[string]Footage{"a/c": {From: t0, To: first.Add(time.Second)}}}
	if handedOver(in, Record{Durable: map[string]time.Time{"a/c": first}}, "a/c") {
		t.Fatalf("handed over with 1 s of overlap when handoff_overlap is 2 s")
	}
}

// TestFailbackOverlaps: on failback the buddy keeps the camera while the
// home's pipeline exists but has written nothing durable, publishes each
// camera's first durable frame, and stops once the home's footage
// overlaps its own: at no step does the camera lack a recorder whose
// footage covers the moment.
func TestFailbackOverlaps(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	if d := w.pub["a"].Durable["a/cam1"]; d.IsZero() {
		t.Fatalf("a publishes no first durable frame for a/cam1: %+v", w.pub["a"])
	}
	w.crash("a")
	w.run(2 * time.Second)
	w.restart("a")
	// a's disk writes nothing durable of its camera yet: b keeps it
	// although a's pipeline records (the old rule stopped here).
	w.noFootage["a a/cam1"] = true
	w.run(testFailbackAfter + 2*time.Second)
	if !slices.Contains(w.pub["a"].Recording, "a/cam1") {
		t.Fatalf("a does not run its camera: %+v", w.pub["a"])
	}
	if _, ok := w.pub["a"].Durable["a/cam1"]; ok {
		t.Fatalf("a publishes a durable frame it has not written: %+v", w.pub["a"].Durable)
	}
	if act := w.servers["b"].act; !slices.Contains(act.Cameras, "a/cam1") || act.Releasing["a/cam1"] != "a" {
		t.Fatalf("b stopped a/cam1 before a's footage was durable: %+v", act)
	}
	delete(w.noFootage, "a a/cam1")
	stopped := false
	for range 20 {
		last := w.footage("b", "a/cam1").To // what b's last step saw it wrote
		w.round()
		if slices.Contains(w.recording("b"), "a/cam1") {
			continue
		}
		stopped = true
		home, ok := w.pub["a"].Durable["a/cam1"]
		if !ok || last.Before(home.Add(DefaultHandoffOverlap)) {
			t.Fatalf("b stopped a/cam1 with its footage ending %v, a's starting %v (ok %v)", last, home, ok)
		}
		break
	}
	if !stopped {
		t.Fatalf("b still records a/cam1 5 s after a's footage became durable")
	}
}

// TestDurablePublished: a camera's first durable frame is published only
// while its pipeline records and its run has durable footage.
func TestDurablePublished(t *testing.T) {
	from := t0.Add(time.Second)
	footage := map[string]Footage{"a/rec": {From: from, To: t0.Add(5 * time.Second)}, "a/off": {From: from, To: t0.Add(2 * time.Second)},
		"a/conn": {From: from, To: t0.Add(2 * time.Second)}}
	pipes := []Pipeline{{ID: "a/rec", State: PipelineRecording}, {ID: "a/off", State: PipelineOffline},
		{ID: "a/conn", State: PipelineConnecting}, {ID: "a/new", State: PipelineRecording}}
	got := durable([]string{"a/conn", "a/new", "a/off", "a/rec"}, footage, pipes)
	if len(got) != 1 || !got["a/rec"].Equal(from) {
		t.Fatalf("published %v, want only a/rec from %v", got, from)
	}
	if got := durable(nil, footage, pipes); got != nil {
		t.Fatalf("published %v for no cameras", got)
	}
}

// TestStuckOwnerKeepsTheOldRecorder: a new owner whose pipeline writes
// nothing durable (it cannot reach the camera) does not get the camera
// stopped on the old recorder at the handoff timeout; once it records,
// the handover completes. With nothing recorded here either, the timeout
// applies.
func TestStuckOwnerKeepsTheOldRecorder(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	w.run(2 * time.Second)
	w.restart("a")
	w.noFootage["a a/cam1"] = true
	w.run(testFailbackAfter + 2*time.Second + 3*5*time.Second) // well past the 5 s handoff timeout
	if act := w.servers["b"].act; !slices.Contains(act.Cameras, "a/cam1") || act.Releasing["a/cam1"] != "a" {
		t.Fatalf("b stopped a/cam1 at the handoff timeout while a records nothing durable: %+v", act)
	}
	delete(w.noFootage, "a a/cam1")
	w.run(3 * time.Second)
	if slices.Contains(w.recording("b"), "a/cam1") {
		t.Fatalf("b still records a/cam1 once a's footage is durable")
	}

	// b's own pipeline offline too: nothing to keep, the timeout stops it.
	w = newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	w.run(2 * time.Second)
	w.restart("a")
	w.noFootage["a a/cam1"] = true
	w.failure["a/cam1"] = FailureOther // offline everywhere
	w.run(testFailbackAfter + 2*time.Second + 2*5*time.Second)
	if slices.Contains(w.recording("b"), "a/cam1") {
		t.Fatalf("b keeps an offline a/cam1 past the handoff timeout")
	}
}

func TestCovered(t *testing.T) {
	k := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC) // the new recorder's first durable frame
	for _, tc := range []struct {
		name string
		old  Footage
		from time.Time
		want bool
	}{
		{"reaches exactly the overlap past it", Footage{From: k.Add(-time.Minute), To: k.Add(DefaultHandoffOverlap)}, k, true},
		{"reaches well past it", Footage{To: k.Add(3 * time.Second)}, k, true},
		{"ends just short of the overlap", Footage{To: k.Add(DefaultHandoffOverlap - time.Millisecond)}, k, false},
		{"ends before it: a hole", Footage{To: k.Add(-time.Second)}, k, false},
		{"the new recorder has nothing durable", Footage{To: k.Add(time.Hour)}, time.Time{}, false},
		{"the old recorder has nothing durable", Footage{}, k, false},
	} {
		if got := Covered(tc.old, tc.from, DefaultHandoffOverlap); got != tc.want {
			t.Errorf("%s: Covered = %v, want %v", tc.name, got, tc.want)
		}
	}
}
