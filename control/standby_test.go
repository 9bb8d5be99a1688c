package control

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// withStandby sets a record's standby mode and gives every camera a
// bitrate and a bitrate capacity.
func withStandby(r Record, mode string, camMbps, capMbps float64) Record {
	r.Standby = mode
	for i := range r.Cameras {
		r.Cameras[i].BitrateMbps = camMbps
	}
	r.Capacity.BitrateMbps = capMbps
	return r
}

func placementString(p map[string]Standby) string {
	var out []string
	for _, id := range sortedKeys(p) {
		out = append(out, id+"@"+p[id].Server+":"+p[id].Mode)
	}
	return strings.Join(out, " ")
}

// TestStandbyPlacement: a standby session goes to the server the planner
// would give the critical camera if its home died; only critical cameras
// of alive homes asking for hot or mirror get one; sessions take bitrate
// capacity, so a later home's session goes elsewhere when the first
// buddy is full.
func TestStandbyPlacement(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records []Record
		dead    []string
		want    string
	}{
		{"hot: the first buddy, critical cameras only", []Record{
			withStandby(rec("a", []string{"b", "c"}, 0, "cam1*", "cam2", "cam3*"), StandbyHot, 0, 0),
			rec("b", []string{"a"}, 0), rec("c", nil, 0)}, nil,
			"a/cam1@b:hot a/cam3@b:hot"},
		{"mirror", []Record{
			withStandby(rec("a", []string{"b"}, 0, "cam1*", "cam2"), StandbyMirror, 0, 0),
			rec("b", nil, 0)}, nil,
			"a/cam1@b:mirror"},
		{"cold and unset ask for nothing", []Record{
			withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyCold, 0, 0),
			rec("b", []string{"a"}, 0, "cam1*")}, nil,
			""},
		{"the first buddy dead: the next one", []Record{
			withStandby(rec("a", []string{"b", "c"}, 0, "cam1*"), StandbyHot, 0, 0),
			rec("b", nil, 0), rec("c", nil, 0)}, []string{"b"},
			"a/cam1@c:hot"},
		{"the first buddy full (cameras): the next one", []Record{
			withStandby(rec("a", []string{"b", "c"}, 0, "cam1*"), StandbyHot, 0, 0),
			rec("b", nil, 1, "own1*"), rec("c", nil, 0)}, nil,
			"a/cam1@c:hot"},
		{"a dead home has no standby: its cameras are recorded", []Record{
			withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyHot, 0, 0),
			rec("b", nil, 0)}, []string{"a"},
			""},
		{"no alive buddy: no standby", []Record{
			withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyHot, 0, 0),
			rec("b", nil, 0)}, []string{"b"},
			""},
		{"sessions take bitrate: the second home's goes to the next buddy", []Record{
			withStandby(rec("a1", []string{"b", "c"}, 0, "x*"), StandbyHot, 6, 0),
			withStandby(rec("a2", []string{"b", "c"}, 0, "y*"), StandbyMirror, 6, 0),
			withStandby(rec("b", nil, 0), "", 0, 10), rec("c", nil, 0)}, nil,
			"a1/x@b:hot a2/y@c:mirror"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records := map[string]Record{}
			alive := map[string]bool{}
			for _, r := range tc.records {
				records[r.Name] = r
				alive[r.Name] = true
			}
			for _, d := range tc.dead {
				alive[d] = false
			}
			got := placementString(StandbyPlacement(records, alive))
			if got != tc.want {
				t.Errorf("placement %q, want %q", got, tc.want)
			}
			// Pure: the same view, the same answer.
			if again := placementString(StandbyPlacement(records, alive)); again != got {
				t.Errorf("placement not deterministic: %q then %q", got, again)
			}
		})
	}
}

// TestStandbyFollowsThePlanner: the buddy holds the standby session of a
// critical camera of a hot home; when that buddy dies the session moves
// to the next, and back when it returns; when the home dies the buddy
// holding it records the camera (its session becomes the recording) and
// holds no standby; once the home is back and records, the session is a
// standby again.
func TestStandbyFollowsThePlanner(t *testing.T) {
	w := newWorld(t,
		withStandby(rec("a", []string{"b", "c"}, 0, "cam1*", "cam2"), StandbyHot, 0, 0),
		rec("b", []string{"a"}, 0), rec("c", []string{"a"}, 0))
	w.run(3 * time.Second)
	standbyOn := func(name string) string {
		return strings.Join(StandbyIDs(w.servers[name].act.Standby), ",")
	}
	if got := standbyOn("b"); got != "a/cam1" {
		t.Fatalf("b holds standby %q, want a/cam1", got)
	}
	if got := standbyOn("c"); got != "" {
		t.Fatalf("c holds standby %q, want none", got)
	}
	if got := w.pub["b"].Standbys; !reflect.DeepEqual(got, []string{"a/cam1"}) {
		t.Errorf("b publishes standbys %v", got)
	}

	w.crash("b")
	w.run(2 * time.Second)
	if got := standbyOn("c"); got != "a/cam1" {
		t.Fatalf("after b died, c holds standby %q, want a/cam1", got)
	}
	w.restart("b")
	w.run(3 * time.Second)
	if got, gotC := standbyOn("b"), standbyOn("c"); got != "a/cam1" || gotC != "" {
		t.Fatalf("after b came back: b holds %q, c holds %q; want b a/cam1", got, gotC)
	}

	w.crash("a")
	w.run(2 * time.Second)
	if got := w.recording("b"); !reflect.DeepEqual(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("b records %v after a died, want both cameras", got)
	}
	if got := standbyOn("b"); got != "" {
		t.Errorf("b still holds standby %q for a dead home", got)
	}

	w.restart("a")
	w.run(testFailoverAfter + testFailbackAfter + 8*time.Second)
	if got := w.recording("a"); !reflect.DeepEqual(got, []string{"a/cam1", "a/cam2"}) {
		t.Fatalf("a records %v after failback", got)
	}
	if got := w.recording("b"); len(got) != 0 {
		t.Fatalf("b still records %v after failback", got)
	}
	if got := standbyOn("b"); got != "a/cam1" {
		t.Errorf("after failback b holds standby %q, want a/cam1", got)
	}
}

// TestStandbyCountsAgainstCapacity: a buddy whose bitrate capacity is
// taken by a standby session does not adopt another home's camera that
// does not fit beside it; the next buddy does.
func TestStandbyCountsAgainstCapacity(t *testing.T) {
	w := newWorld(t,
		withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyMirror, 6, 0),
		withStandby(rec("b", nil, 0), "", 0, 10),
		rec("c", nil, 0),
		withStandby(rec("x", []string{"b", "c"}, 0, "cam9"), "", 6, 0))
	w.run(3 * time.Second)
	if got := StandbyIDs(w.servers["b"].act.Standby); !reflect.DeepEqual(got, []string{"a/cam1"}) {
		t.Fatalf("b holds standby %v", got)
	}
	w.crash("x")
	w.run(2 * time.Second)
	if got := w.recording("b"); len(got) != 0 {
		t.Errorf("b adopted %v beyond its capacity (6 Mbps of 10 held by a standby)", got)
	}
	if got := w.recording("c"); !reflect.DeepEqual(got, []string{"x/cam9"}) {
		t.Errorf("c records %v, want x/cam9", got)
	}
}

// TestStandbyUnavailable: a standby session the camera refuses raises one
// standby.unavailable alarm with a condition, however often the session
// retries, and standby.available resolves it once the session works.
func TestStandbyUnavailable(t *testing.T) {
	w := newWorld(t,
		withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyHot, 0, 0),
		rec("b", nil, 0))
	w.run(3 * time.Second)
	state := PipelineOffline
	var acts []Actions
	stepB := func(n int) {
		for range n {
			for _, name := range []string{"a", "b"} {
				s := w.servers[name]
				in := w.inputs(name)
				if name == "b" {
					for _, sb := range s.act.Standby {
						in.Standbys = append(in.Standbys, Pipeline{ID: sb.Camera, State: state, Error: "453 Not Enough Bandwidth"})
					}
				}
				s.st, s.act = Step(s.st, in)
				if name == "b" {
					acts = append(acts, s.act)
				}
			}
			w.now = w.now.Add(tick)
		}
	}
	stepB(4)
	state = PipelineConnecting // a retry
	stepB(2)
	state = PipelineOffline
	stepB(2)
	alarms := eventsOf(acts, TypeStandbyUnavailable)
	if len(alarms) != 1 {
		t.Fatalf("%d standby.unavailable alarms, want 1: %+v", len(alarms), alarms)
	}
	if a := alarms[0]; a.Condition != ConditionStandby("a/cam1") || a.Severity != SeverityAlarm || !strings.Contains(a.Text, "453") {
		t.Errorf("alarm %+v", a)
	}
	if got := eventsOf(acts, TypeStandbyAvailable); len(got) != 0 {
		t.Fatalf("resolved while refused: %+v", got)
	}
	state = PipelineRecording
	acts = nil
	stepB(2)
	res := eventsOf(acts, TypeStandbyAvailable)
	if len(res) != 1 || !reflect.DeepEqual(res[0].Resolves, []string{ConditionStandby("a/cam1")}) {
		t.Fatalf("want one standby.available resolving the alarm, got %+v", res)
	}
	if got := eventsOf(acts, TypeStandbyUnavailable); len(got) != 0 {
		t.Errorf("alarm again: %+v", got)
	}
}

// TestStandbyUnavailableSaysWhy: the alarm names what became of the
// session, by its failure, with the camera's answer: a refusal of the
// credentials, a stream that stopped, or a session that could not be
// opened. Only the first is the camera refusing.
func TestStandbyUnavailableSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		failure Failure
		err     string
		want    string
	}{
		{FailureOther, "453 Not Enough Bandwidth", "b could not open the hot standby session for camera a/cam1 (453 Not Enough Bandwidth)"},
		{FailureOther, "dial tcp 10.0.0.9:554: connect: no route to host", "b could not open the hot standby session for camera a/cam1 (dial tcp"},
		{FailureAuth, "401 Unauthorized", "camera a/cam1 refused the credentials of the hot standby session of b (401 Unauthorized)"},
		{FailureStalled, "UDP timeout", "the hot standby session of b for camera a/cam1 lost its stream (UDP timeout)"},
	} {
		t.Run(tc.err, func(t *testing.T) {
			w := newWorld(t,
				withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyHot, 0, 0),
				rec("b", nil, 0))
			w.run(3 * time.Second)
			var alarms []Event
			for range 3 {
				for _, name := range []string{"a", "b"} {
					s := w.servers[name]
					in := w.inputs(name)
					if name == "b" {
						for _, sb := range s.act.Standby {
							in.Standbys = append(in.Standbys, Pipeline{ID: sb.Camera, State: PipelineOffline, Failure: tc.failure, Error: tc.err})
						}
					}
					s.st, s.act = Step(s.st, in)
					if name == "b" {
						alarms = append(alarms, eventsOf([]Actions{s.act}, TypeStandbyUnavailable)...)
					}
				}
				w.now = w.now.Add(tick)
			}
			if len(alarms) != 1 {
				t.Fatalf("%d standby.unavailable alarms, want 1: %+v", len(alarms), alarms)
			}
			text := alarms[0].Text
			if !strings.Contains(text, tc.want) || !strings.HasSuffix(text, ": its failover is cold; a's own recording is not affected") {
				t.Errorf("alarm text %q, want it to say %q and that a's recording is not affected", text, tc.want)
			}
			if tc.failure != FailureAuth && strings.Contains(text, "refused") {
				t.Errorf("alarm text %q says refused for a %v failure", text, tc.failure)
			}
		})
	}
}

// TestStandbyOnlyWhileTheHomeRecords: the buddy opens the standby session
// only once the home records the camera, and closes it once the home's
// pipeline has been offline for StandbyYieldAfter, so a camera with a
// stream limit serves the home first; it comes back when the home
// records again.
func TestStandbyOnlyWhileTheHomeRecords(t *testing.T) {
	w := newWorld(t,
		withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyHot, 0, 0),
		rec("b", nil, 0))
	w.failure["a/cam1"] = FailureOther
	w.run(3 * time.Second)
	if got := StandbyIDs(w.servers["b"].act.Standby); len(got) != 0 {
		t.Fatalf("b holds standby %v while the home does not record the camera", got)
	}
	delete(w.failure, "a/cam1")
	w.run(time.Second)
	if got := StandbyIDs(w.servers["b"].act.Standby); !reflect.DeepEqual(got, []string{"a/cam1"}) {
		t.Fatalf("b holds standby %v once the home records, want a/cam1", got)
	}
	w.failure["a/cam1"] = FailureOther
	w.run(time.Second)
	if got := StandbyIDs(w.servers["b"].act.Standby); !reflect.DeepEqual(got, []string{"a/cam1"}) {
		t.Fatalf("b closed standby %v before StandbyYieldAfter", got)
	}
	w.run(StandbyYieldAfter)
	if got := StandbyIDs(w.servers["b"].act.Standby); len(got) != 0 {
		t.Errorf("b keeps standby %v while the home's pipeline is offline for longer than StandbyYieldAfter", got)
	}
}

// TestHotStandbyWritesUntilTheHomeRecords: a camera handed back to its
// home before the home records it goes on being written by the buddy (as
// a mirror) until the home records, then is held hot.
func TestHotStandbyWritesUntilTheHomeRecords(t *testing.T) {
	w := newWorld(t,
		withStandby(rec("a", []string{"b"}, 0, "cam1*"), StandbyHot, 0, 0),
		rec("b", nil, 0))
	w.run(3 * time.Second)
	w.crash("a")
	w.run(2 * time.Second)
	if got := w.recording("b"); !reflect.DeepEqual(got, []string{"a/cam1"}) {
		t.Fatalf("b records %v", got)
	}
	w.restart("a")
	w.failure["a/cam1"] = FailureOther // the home's pipeline has not recorded yet
	var modes []string
	for end := w.now.Add(testFailoverAfter + testFailbackAfter + 6*time.Second); w.now.Before(end); {
		w.round()
		if sb := w.servers["b"].act.Standby; len(sb) == 1 && !slices.Contains(w.recording("b"), "a/cam1") {
			if len(modes) == 0 || modes[len(modes)-1] != sb[0].Mode {
				modes = append(modes, sb[0].Mode)
			}
		}
		if slices.Contains(w.recording("a"), "a/cam1") && !slices.Contains(w.recording("b"), "a/cam1") {
			delete(w.failure, "a/cam1") // the home records from here on
		}
	}
	if !reflect.DeepEqual(modes, []string{StandbyMirror, StandbyHot}) {
		t.Errorf("after the hand-back b's standby was %v, want mirror (writing) until the home records, then hot", modes)
	}
}

// TestStandbyPlacementCachedUntilTheViewChanges: the placement is reused
// while nothing it reads changed, and computed again when a record's
// version or a verdict changes; a cached placement equals a fresh one.
func TestStandbyPlacementCachedUntilTheViewChanges(t *testing.T) {
	w := newWorld(t,
		withStandby(rec("a", []string{"b", "c"}, 0, "cam1*"), StandbyHot, 0, 0),
		rec("b", nil, 0), rec("c", nil, 0))
	w.run(3 * time.Second)
	before := w.servers["b"].st.placement
	w.run(time.Second)
	after := w.servers["b"].st.placement
	if !before.view.equal(after.view) {
		t.Fatalf("placement view changed in a quiet site:\n%+v\n%+v", before.view, after.view)
	}
	if fresh := StandbyPlacement(w.servers["b"].st.Records, w.servers["b"].st.Alive); !reflect.DeepEqual(fresh, after.out) {
		t.Errorf("cached placement %v, fresh %v", after.out, fresh)
	}
	w.crash("b")
	w.run(time.Second)
	if got := w.servers["c"].st.placement; got.view.equal(after.view) || got.out["a/cam1"].Server != "c" {
		t.Errorf("after b died c's placement is %v (view unchanged: %v)", got.out, got.view.equal(after.view))
	}
}

// TestPlacementViewSeesTheOwnRecord: the own record carries no version,
// so every change of it the planner reads changes the view, and the
// placement is computed again.
func TestPlacementViewSeesTheOwnRecord(t *testing.T) {
	base := func() map[string]Record {
		a := withStandby(rec("a", []string{"b"}, 0, "cam1*", "cam2"), StandbyHot, 2, 100)
		a.Version = 0 // the own record, as Step holds it
		return map[string]Record{"a": a, "b": rec("b", nil, 0)}
	}
	alive := map[string]bool{"a": true, "b": true}
	v0 := viewOf(base(), alive, "a").clone()
	if !v0.equal(viewOf(base(), alive, "a")) {
		t.Fatal("the same records give different views")
	}
	changes := []struct {
		name   string
		change func(*Record)
	}{
		{"standby mode", func(r *Record) { r.Standby = StandbyMirror }},
		{"a camera's bitrate", func(r *Record) { r.Cameras[1].BitrateMbps = 4 }},
		{"a camera made critical", func(r *Record) { r.Cameras[1].Critical = true }},
		{"a camera added", func(r *Record) { r.Cameras = append(r.Cameras, r.Cameras[0]) }},
		{"capacity", func(r *Record) { r.Capacity.Cameras = 7 }},
		{"buddies", func(r *Record) { r.Buddies = []string{"c"} }},
		{"mode", func(r *Record) { r.Mode = "critical" }},
		{"failback", func(r *Record) { r.Failback = !r.Failback }},
		{"maintenance", func(r *Record) { r.Maintenance = true }},
		{"stable", func(r *Record) { r.Stable = !r.Stable }},
		{"a claim", func(r *Record) { r.Claims = []string{"b/x"} }},
	}
	for _, c := range changes {
		records := base()
		a := records["a"]
		a.Cameras = slices.Clone(a.Cameras)
		c.change(&a)
		records["a"] = a
		if v0.equal(viewOf(records, alive, "a")) {
			t.Errorf("%s changed in the own record: the view is the same", c.name)
		}
	}
	// A record's slices changed in place do not change the cached view.
	records := base()
	v := viewOf(records, alive, "a").clone()
	records["a"].Cameras[1].Critical = true
	if v.equal(viewOf(records, alive, "a")) {
		t.Error("the cached view shares the record's cameras")
	}
}

// BenchmarkPlacementView250 is what every Step pays to know whether the
// standby placement must be computed again, on a server of 250 cameras
// with two peers.
func BenchmarkPlacementView250(b *testing.B) {
	var names []string
	for i := range 250 {
		names = append(names, fmt.Sprintf("cam%d*", i))
	}
	records := map[string]Record{
		"a": withStandby(rec("a", []string{"b", "c"}, 0, names...), StandbyHot, 2, 1000),
		"b": rec("b", []string{"a"}, 0), "c": rec("c", []string{"a"}, 0),
	}
	alive := map[string]bool{"a": true, "b": true, "c": true}
	cached := viewOf(records, alive, "a").clone()
	b.ReportAllocs()
	for b.Loop() {
		if !viewOf(records, alive, "a").equal(cached) {
			b.Fatal("view changed")
		}
	}
}
