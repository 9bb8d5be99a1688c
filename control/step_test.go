package control

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/failover"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const (
	testFailoverAfter = time.Second
	testFailbackAfter = 5 * time.Second
	tick              = 250 * time.Millisecond
)

// server is a test server: its record and the loop's memory.
type server struct {
	rec Record
	st  State
	act Actions
}

// rec builds a record: cameras named "name[*]" are critical.
func rec(name string, buddies []string, capacity int, cams ...string) Record {
	r := Record{Name: name, Buddies: buddies, Mode: failover.ModeAll, Failback: true,
		Capacity: failover.Capacity{Cameras: capacity}, Timing: "200ms/1s"}
	for _, c := range cams {
		crit := strings.HasSuffix(c, "*")
		r.Cameras = append(r.Cameras, failover.Camera{Name: strings.TrimSuffix(c, "*"), Critical: crit})
	}
	return r
}

// world is a small site stepped by hand: every server sees the same view
// (the tests of lagging views are in the property test).
type world struct {
	t       *testing.T
	now     time.Time
	servers map[string]*server
	order   []string
	dead    map[string]bool            // down in the membership view
	version map[string]uint64          // published record versions
	pub     map[string]Record          // published records
	pipes   map[string]map[string]bool // server -> camera -> recording (after one step)
	noCreds map[string]bool            // "server camera-id": that server lacks the credentials
	refuted map[string]time.Time
	failure map[string]Failure // camera id -> offline with this failure
	// since: server -> camera -> when its pipeline began recording; its
	// footage is durable one tick later and lags the clock by a tick.
	since map[string]map[string]time.Time
	// noFootage: "server camera-id": that pipeline records but writes
	// nothing durable (a disk that does not keep up).
	noFootage map[string]bool
	left      map[string]bool // down after a clean stop (it left)
	stopping  map[string]bool // draining for a stop
}

func newWorld(t *testing.T, recs ...Record) *world {
	w := &world{t: t, now: t0, servers: map[string]*server{}, dead: map[string]bool{}, version: map[string]uint64{},
		pub: map[string]Record{}, pipes: map[string]map[string]bool{}, noCreds: map[string]bool{}, refuted: map[string]time.Time{},
		failure: map[string]Failure{}, since: map[string]map[string]time.Time{}, noFootage: map[string]bool{}, left: map[string]bool{}, stopping: map[string]bool{}}
	for _, r := range recs {
		w.servers[r.Name] = &server{rec: r}
		w.order = append(w.order, r.Name)
		w.pub[r.Name] = r
		w.version[r.Name] = 1
		w.pipes[r.Name] = map[string]bool{}
		w.since[r.Name] = map[string]time.Time{}
	}
	return w
}

// footage is what the index of server holds of camera id's current run.
func (w *world) footage(server, id string) Footage {
	since, ok := w.since[server][id]
	if !ok || w.noFootage[server+" "+id] || w.now.Before(since.Add(tick)) {
		return Footage{}
	}
	return Footage{From: since, To: w.now.Add(-tick)}
}

func (w *world) inputs(name string) Inputs {
	s := w.servers[name]
	in := Inputs{Now: w.now, Clustered: true, Records: map[string]Record{}, Credentials: map[string]bool{},
		Config: Config{Self: s.rec, FailoverAfter: testFailoverAfter, FailbackAfter: testFailbackAfter,
			HandoffTimeout: 5 * time.Second, AdoptionReport: 3 * time.Second, ServerUpHoldDown: 4 * time.Second},
		DeclaredDeadAt: w.refuted[name], Stopping: w.stopping[name]}
	for _, n := range w.order {
		in.Members = append(in.Members, Member{Name: n, Up: !w.dead[n] || n == name, Left: w.left[n] && n != name})
		if n != name {
			r := w.pub[n]
			r.Version = w.version[n]
			in.Records[n] = r
		}
		for _, c := range w.servers[n].rec.Cameras {
			if id := failover.CameraID(n, c.Name); !w.noCreds[name+" "+id] {
				in.Credentials[id] = true
			}
		}
	}
	for _, id := range slices.Sorted(mapKeys(w.pipes[name])) {
		p := Pipeline{ID: id, State: PipelineConnecting}
		if f, ok := w.failure[id]; ok {
			p.State, p.Failure, p.Error = PipelineOffline, f, "failed"
		} else if w.pipes[name][id] {
			p.State = PipelineRecording
			if f := w.footage(name, id); !f.From.IsZero() {
				if in.Footage == nil {
					in.Footage = map[string]Footage{}
				}
				in.Footage[id] = f
			}
		}
		in.Pipelines = append(in.Pipelines, p)
	}
	return in
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// step steps the named server once at the current time.
func (w *world) step(name string) Actions {
	s := w.servers[name]
	in := w.inputs(name)
	st, act := Step(s.st, in)
	s.st, s.act = st, act
	if act.Publish != nil {
		r := w.pub[name]
		r.Claims, r.Recording, r.Durable, r.Stable = act.Publish.Claims, act.Publish.Recording, act.Publish.Durable, act.Publish.Stable
		r.Maintenance, r.Reclaim = s.rec.Maintenance, act.Publish.Reclaim
		r.Standbys, r.Live = act.Publish.Standbys, act.Publish.Live
		if !reflect.DeepEqual(r, w.pub[name]) {
			w.version[name]++
		}
		w.pub[name] = r
	}
	pipes := map[string]bool{}
	for _, id := range act.Cameras {
		_, had := w.pipes[name][id]
		pipes[id] = had // recording from the step after it started
	}
	w.pipes[name] = pipes
	since := map[string]time.Time{}
	for id, recording := range pipes {
		if t, ok := w.since[name][id]; ok {
			since[id] = t
		} else if recording {
			since[id] = w.now
		}
	}
	w.since[name] = since
	return act
}

// round steps every live server once and advances the clock by a tick.
func (w *world) round() map[string]Actions {
	out := map[string]Actions{}
	for _, n := range w.order {
		if !w.dead[n] {
			out[n] = w.step(n)
		}
	}
	w.now = w.now.Add(tick)
	return out
}

// run runs rounds for d and returns every action, per server.
func (w *world) run(d time.Duration) map[string][]Actions {
	out := map[string][]Actions{}
	for end := w.now.Add(d); w.now.Before(end); {
		for n, a := range w.round() {
			out[n] = append(out[n], a)
		}
	}
	return out
}

// crash kills a server: it leaves the view and forgets everything.
func (w *world) crash(name string) {
	w.dead[name] = true
	w.servers[name].st = State{}
	w.pipes[name] = map[string]bool{}
	w.since[name] = map[string]time.Time{}
}

func (w *world) restart(name string) { w.dead[name] = false }

func notices(acts []Actions, typ string) []Notice {
	var out []Notice
	for _, a := range acts {
		for _, n := range a.Notices {
			if n.Type == typ {
				out = append(out, n)
			}
		}
	}
	return out
}

func eventsOf(acts []Actions, typ string) []Event {
	var out []Event
	for _, a := range acts {
		for _, e := range a.Events {
			if e.Type == typ {
				out = append(out, e)
			}
		}
	}
	return out
}

func all(m map[string][]Actions) []Actions {
	var out []Actions
	for _, n := range slices.Sorted(mapKeys(m)) {
		out = append(out, m[n]...)
	}
	return out
}

func (w *world) recording(name string) []string { return w.servers[name].act.Cameras }

// TestSettling: after a start a clustered server claims nothing and changes
// nothing for failover_after, then records its cameras; a standalone server
// records at once.
func TestSettling(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	a := w.step("a")
	if !a.Settling || len(a.Cameras) != 0 || a.Publish == nil || len(a.Publish.Claims) != 0 {
		t.Fatalf("first step: %+v, want settling with no claims and no cameras", a)
	}
	for w.now = w.now.Add(tick); w.now.Before(t0.Add(testFailoverAfter)); w.now = w.now.Add(tick) {
		if a := w.step("a"); !a.Settling {
			t.Fatalf("step before failover_after passed is not settling")
		}
	}
	if a := w.step("a"); a.Settling || !slices.Equal(a.Cameras, []string{"a/cam1"}) || !slices.Equal(a.Publish.Claims, []string{"a/cam1"}) {
		t.Fatalf("after settling: %+v, want a/cam1 claimed and recorded", a)
	}

	in := w.inputs("a")
	in.Clustered = false
	st, act := Step(State{}, in)
	if act.Settling || act.Publish != nil || !slices.Equal(act.Cameras, []string{"a/cam1"}) || !st.Recording["a/cam1"] {
		t.Fatalf("standalone first step: %+v, want a/cam1 recorded at once and nothing published", act)
	}
}

// TestHangAndRefutedDeathSettle: a pause longer than half of
// failover_after, or learning that peers declared this server dead, drops
// its claims and settles; pipelines keep running meanwhile; its cameras
// come back only once it has been healthy for failback_after.
func TestHangAndRefutedDeathSettle(t *testing.T) {
	for _, how := range []string{"hang", "refuted"} {
		t.Run(how, func(t *testing.T) {
			w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
			w.run(2 * testFailbackAfter)
			if got := w.recording("a"); !slices.Equal(got, []string{"a/cam1"}) {
				t.Fatalf("a records %v before the failure", got)
			}
			// a is declared dead; b adopts its camera.
			w.dead["a"] = true
			w.run(2 * time.Second)
			if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1"}) {
				t.Fatalf("b records %v while a is declared dead, want a/cam1", got)
			}
			w.dead["a"] = false
			switch how {
			case "hang":
				// a's loop did not run for those 2 s: the next step is late.
			case "refuted":
				w.refuted["a"] = w.now.Add(-tick)
				// a's loop kept running (lost packets): step it meanwhile
				// would have shown it claims; its memory says it is healthy.
				w.servers["a"].st.lastRound = w.now.Add(-tick)
			}
			act := w.step("a")
			if !act.Settling || len(act.Publish.Claims) != 0 || act.Publish.Stable {
				t.Fatalf("first step after the %s: %+v, want settling, no claims, not stable", how, act)
			}
			if !slices.Equal(act.Cameras, []string{"a/cam1"}) {
				t.Errorf("settling stopped the pipelines: %v", act.Cameras)
			}
			w.now = w.now.Add(tick)
			w.run(testFailbackAfter - 2*tick)
			if w.servers["b"].st.Plan.Owner["a/cam1"] != "b" {
				t.Fatalf("camera went back to a before failback_after: owner %q", w.servers["b"].st.Plan.Owner["a/cam1"])
			}
			w.run(testFailbackAfter)
			if got := w.servers["b"].st.Plan.Owner["a/cam1"]; got != "a" {
				t.Fatalf("after failback_after of health the camera is on %q, want a", got)
			}
		})
	}
}

// TestStaleRecordDistrusted: a server seen coming back still carries the
// record it had before it died; its claims count only once it publishes a
// newer version.
func TestStaleRecordDistrusted(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	w.run(2 * time.Second)
	if got := w.recording("b"); !slices.Equal(got, []string{"a/cam1"}) {
		t.Fatalf("b records %v, want a/cam1", got)
	}
	// a is alive again in the view, but its record is the old one, which
	// claims a/cam1 and says stable.
	w.dead["a"] = false
	w.step("b")
	st := w.servers["b"].st
	if r := st.Records["a"]; len(r.Claims) != 0 || r.Stable {
		t.Fatalf("stale record trusted: %+v", r)
	}
	if st.Plan.Owner["a/cam1"] != "b" {
		t.Fatalf("a stale claim pulled the camera to %q", st.Plan.Owner["a/cam1"])
	}
	w.step("b")
	if r := w.servers["b"].st.Records["a"]; len(r.Claims) != 0 {
		t.Fatalf("stale record trusted on the second look: %+v", r)
	}
	// A newer version is trusted.
	w.version["a"]++
	w.step("b")
	if r := w.servers["b"].st.Records["a"]; !slices.Equal(r.Claims, []string{"a/cam1"}) {
		t.Fatalf("newer record not trusted: %+v", r)
	}
}

// TestMakeBeforeBreak: a camera moving between live servers keeps recording
// on the old one until the new one's record says it records it, bounded by
// the handoff timeout; a camera displaced to nobody stops at once.
func TestMakeBeforeBreak(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	w.run(2 * time.Second)
	w.restart("a")
	// Step b alone while a's record does not list the camera yet.
	w.run(testFailbackAfter + 2*time.Second)
	st := w.servers["b"].st
	if st.Plan.Owner["a/cam1"] != "a" {
		t.Fatalf("camera not planned home: %q", st.Plan.Owner["a/cam1"])
	}
	if !slices.Contains(w.pub["a"].Recording, "a/cam1") {
		t.Fatalf("a does not record its camera: %+v", w.pub["a"])
	}
	if slices.Contains(w.recording("b"), "a/cam1") {
		t.Fatalf("b still records a/cam1 after a reported recording it")
	}

	t.Run("kept until the new owner records", func(t *testing.T) {
		w := newWorld(t, rec("a", []string{"b"}, 0, "cam1"), rec("b", []string{"a"}, 0))
		w.run(2 * testFailbackAfter)
		w.crash("a")
		w.run(2 * time.Second)
		w.restart("a")
		w.noCreds["a a/cam1"] = true // a cannot start it: its record never lists it
		w.run(testFailbackAfter + 2*time.Second)
		act := w.servers["b"].act
		if !slices.Contains(act.Cameras, "a/cam1") || act.Releasing["a/cam1"] != "a" {
			t.Fatalf("b gave up a/cam1 before a recorded it: %+v", act)
		}
		w.run(5 * time.Second) // the handoff timeout
		if slices.Contains(w.recording("b"), "a/cam1") {
			t.Fatalf("b keeps a/cam1 past the handoff timeout")
		}
	})
	t.Run("displaced stops at once", func(t *testing.T) {
		w := newWorld(t, rec("a", []string{"s"}, 0, "x"), rec("b", []string{"s"}, 0, "y*"), rec("s", nil, 1))
		w.run(2 * testFailbackAfter)
		w.crash("a")
		w.run(2 * time.Second)
		if got := w.recording("s"); !slices.Equal(got, []string{"a/x"}) {
			t.Fatalf("standby records %v, want a/x", got)
		}
		w.crash("b")
		acts := w.run(2 * time.Second)
		if got := w.recording("s"); !slices.Equal(got, []string{"b/y"}) {
			t.Fatalf("standby records %v, want the critical b/y only", got)
		}
		rel := notices(acts["s"], TypeFailoverReleased)
		if len(rel) != 1 || !slices.Equal(rel[0].Cameras, []string{"a/x"}) || rel[0].FailedServer != "a" {
			t.Fatalf("released notices %+v, want one for a/x", rel)
		}
	})
}

// TestOneAnnouncer: the failure of a server is announced by its first alive
// buddy, or by the lowest-named alive server when none is.
func TestOneAnnouncer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		recs    []Record
		crash   []string
		victim  string
		wantSrv string
	}{
		{"first buddy", []Record{rec("a", []string{"c", "b"}, 0, "x"), rec("b", nil, 0), rec("c", nil, 0)}, []string{"a"}, "a", "c"},
		{"next buddy", []Record{rec("a", []string{"c", "b"}, 0, "x"), rec("b", nil, 0), rec("c", nil, 0), rec("d", nil, 0)}, []string{"c", "a"}, "a", "b"},
		{"no buddy alive", []Record{rec("a", []string{"d"}, 0, "x"), rec("b", nil, 0), rec("c", nil, 0), rec("d", nil, 0)}, []string{"d", "a"}, "a", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.recs...)
			w.run(2 * testFailbackAfter)
			var acts map[string][]Actions
			for _, c := range tc.crash {
				w.crash(c)
				acts = w.run(time.Second)
			}
			var who []string
			for _, n := range slices.Sorted(mapKeys(acts)) {
				for _, nt := range notices(acts[n], TypeServerDown) {
					if nt.FailedServer == tc.victim {
						who = append(who, n)
					}
				}
			}
			if !slices.Equal(who, []string{tc.wantSrv}) {
				t.Fatalf("server.down of %s announced by %v, want [%s]", tc.victim, who, tc.wantSrv)
			}
		})
	}
}

// TestFlapDamping: a server flapping under a lossy network gives one
// server.down notice at the start of the episode and one server.up once it
// stayed up for the hold-down; every flap is in the event log; the
// down alarm is resolved when the episode ends.
func TestFlapDamping(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "x"), rec("b", []string{"a"}, 0, "y"))
	w.run(2 * testFailbackAfter)
	var acts []Actions
	for range 5 { // down 1 s, up 1 s: shorter than the 4 s hold-down
		w.dead["a"] = true
		acts = append(acts, w.run(time.Second)["b"]...)
		w.dead["a"] = false
		w.refuted["a"] = w.now
		acts = append(acts, w.run(time.Second)["b"]...)
	}
	if got := notices(acts, TypeServerDown); len(got) != 1 {
		t.Fatalf("%d server.down notices for one episode of 5 flaps, want 1", len(got))
	}
	if got := notices(acts, TypeServerUp); len(got) != 0 {
		t.Fatalf("server.up sent while the server still flaps")
	}
	downs := eventsOf(acts, TypeServerDown)
	if len(downs) != 5 || downs[0].Severity != SeverityAlarm || downs[0].Condition != ConditionServerDown("a") || downs[1].Severity != SeverityWarning {
		t.Fatalf("server.down events %+v, want 5: one alarm with its condition, then warnings", downs)
	}
	if ups := eventsOf(acts, TypeServerUp); len(ups) != 5 {
		t.Fatalf("%d server.up events, want one per flap", len(ups))
	}
	acts = w.run(5 * time.Second)["b"]
	up := notices(acts, TypeServerUp)
	if len(up) != 1 || up[0].FailedServer != "a" {
		t.Fatalf("server.up notices after the hold-down: %+v, want one for a", up)
	}
	res := eventsOf(acts, TypeAlarmResolved)
	if len(res) != 1 || !slices.Equal(res[0].Resolves, []string{ConditionServerDown("a")}) {
		t.Fatalf("resolving events %+v", res)
	}
	// A new failure is a new episode.
	w.crash("a")
	if got := notices(w.run(time.Second)["b"], TypeServerDown); len(got) != 1 {
		t.Fatalf("new episode: %d server.down notices, want 1", len(got))
	}
}

// TestTakeoverNoticeTellsOnlyWhatRecords: failover.completed names only the
// cameras recording when it is sent; one that starts later gets its own
// notice; one given up before it recorded is never named.
func TestTakeoverNoticeTellsOnlyWhatRecords(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 0, "c1", "c2", "c3"), rec("b", nil, 0))
	w.servers["a"].rec.Aspects = []Aspect{{Kind: "io", Name: "door"}}
	w.pub["a"] = w.servers["a"].rec
	w.run(2 * testFailbackAfter)
	w.failure["a/c2"] = FailureOther // c2 stays offline on b at first
	w.noCreds["b a/c3"] = true       // b cannot start c3
	w.crash("a")
	acts := w.run(2 * time.Second)["b"]
	if got := notices(acts, TypeFailoverCompleted); len(got) != 0 {
		t.Fatalf("notice before the report time while c2 is not recording: %+v", got)
	}
	if got := eventsOf(acts, TypeFailoverStarted); len(got) != 1 || !slices.Equal(got[0].Cameras, []string{"a/c1", "a/c2", "a/c3"}) {
		t.Fatalf("failover.started %+v", got)
	}
	acts = w.run(2 * time.Second)["b"]
	got := notices(acts, TypeFailoverCompleted)
	if len(got) != 1 || !slices.Equal(got[0].Cameras, []string{"a/c1"}) || got[0].FailedServer != "a" || !got[0].Serving ||
		!slices.Equal(got[0].Aspects, []Aspect{{Kind: "io", Name: "door"}}) {
		t.Fatalf("failover.completed after the report time: %+v, want a/c1 only, serving, with a's aspects", got)
	}
	delete(w.failure, "a/c2")
	acts = w.run(time.Second)["b"]
	got = notices(acts, TypeFailoverCompleted)
	if len(got) != 1 || !slices.Equal(got[0].Cameras, []string{"a/c2"}) || len(got[0].Aspects) != 0 {
		t.Fatalf("notice for the camera that started later: %+v, want a/c2 alone", got)
	}
	if on := notices(acts, TypeCameraOnline); len(on) != 1 || !on[0].Serving {
		t.Fatalf("camera.online notices %+v", on)
	}
	if nc := eventsOf(all(w.run(5*time.Second)), TypeNoCredentials); len(nc) != 1 || !slices.Equal(nc[0].Cameras, []string{"a/c3"}) {
		t.Fatalf("no_credentials alarms %+v, want one for a/c3", nc)
	}
	if got := notices(all(w.run(30*time.Second)), TypeFailoverCompleted); len(got) != 0 {
		t.Fatalf("a camera that never records was named: %+v", got)
	}
}

// TestCapacityAlarms: capacity.exceeded names the cameras in an array and
// is announced by the lowest-named alive server; capacity.restored follows
// when they are recorded again and resolves the alarm.
func TestCapacityAlarms(t *testing.T) {
	w := newWorld(t, rec("a", []string{"s"}, 0, "x", "y"), rec("b", []string{"s"}, 0, "z"), rec("s", nil, 1))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	acts := w.run(2 * time.Second)
	var who []string
	var ex []Notice
	for _, n := range slices.Sorted(mapKeys(acts)) {
		if got := notices(acts[n], TypeCapacityExceeded); len(got) > 0 {
			who = append(who, n)
			ex = got
		}
	}
	if !slices.Equal(who, []string{"b"}) || len(ex) != 1 || !slices.Equal(ex[0].Cameras, []string{"a/y"}) {
		t.Fatalf("capacity.exceeded by %v: %+v, want one from b naming a/y", who, ex)
	}
	alarm := eventsOf(acts["b"], TypeCapacityExceeded)
	if len(alarm) != 1 || alarm[0].Condition == "" {
		t.Fatalf("capacity alarm %+v has no condition", alarm)
	}
	w.restart("a")
	acts = w.run(2*testFailbackAfter + 6*time.Second)
	rest := notices(acts["b"], TypeCapacityRestored)
	if len(rest) != 1 || !slices.Equal(rest[0].Cameras, []string{"a/y"}) {
		t.Fatalf("capacity.restored %+v, want a/y", rest)
	}
	ev := eventsOf(acts["b"], TypeCapacityRestored)
	if len(ev) != 1 || !slices.Equal(ev[0].Resolves, []string{alarm[0].Condition}) {
		t.Fatalf("restored event %+v does not resolve %q", ev, alarm[0].Condition)
	}
}

// TestCameraAlarms: a pipeline going offline raises the alarm its failure
// names, with a condition; recording again raises camera.online, which
// resolves it, as event and notice.
func TestCameraAlarms(t *testing.T) {
	for _, tc := range []struct {
		failure Failure
		typ     string
	}{{FailureOther, TypeCameraOffline}, {FailureAuth, TypeCameraAuthFailed}, {FailureStalled, TypeRecordingStalled}} {
		w := newWorld(t, rec("a", nil, 0, "x"))
		w.run(2 * time.Second)
		w.failure["a/x"] = tc.failure
		acts := w.run(time.Second)["a"]
		off := eventsOf(acts, tc.typ)
		if len(off) != 1 || off[0].Condition != ConditionCamera("a/x") || off[0].Severity != SeverityAlarm || len(notices(acts, tc.typ)) != 1 {
			t.Fatalf("%s: events %+v", tc.typ, off)
		}
		delete(w.failure, "a/x")
		acts = w.run(time.Second)["a"]
		on := eventsOf(acts, TypeCameraOnline)
		if len(on) != 1 || !slices.Equal(on[0].Resolves, []string{ConditionCamera("a/x")}) || len(notices(acts, TypeCameraOnline)) != 1 {
			t.Fatalf("%s: camera.online %+v", tc.typ, on)
		}
	}
}

// TestConfigMismatch: servers that disagree on failover timing, or name a
// buddy no server is called, raise one config.mismatch per finding, from
// the lowest-named alive server.
func TestConfigMismatch(t *testing.T) {
	b := rec("b", []string{"x"}, 0)
	b.Timing = "1s/3s"
	w := newWorld(t, rec("a", []string{"b"}, 0), b)
	acts := w.run(5 * time.Second)
	if got := eventsOf(acts["b"], TypeConfigMismatch); len(got) != 0 {
		t.Errorf("b (not the lowest) raised %+v", got)
	}
	got := eventsOf(acts["a"], TypeConfigMismatch)
	if len(got) != 1 {
		t.Fatalf("config.mismatch %+v, want one", got)
	}
	for _, want := range []string{"b uses keepalive/failover_after 1s/3s", `b names buddy "x"`} {
		if !strings.Contains(got[0].Text, want) {
			t.Errorf("mismatch text %q lacks %q", got[0].Text, want)
		}
	}
}

// TestStepIsPure: equal arguments give equal results, and the previous
// state is not modified (callers keep old states).
func TestStepIsPure(t *testing.T) {
	w := newWorld(t, rec("a", []string{"b"}, 1, "x", "y"), rec("b", []string{"a"}, 2, "z"))
	w.run(2 * testFailbackAfter)
	w.crash("a")
	for range 12 {
		prev := w.servers["b"].st
		snapshot := fmt.Sprintf("%#v", prev)
		in := w.inputs("b")
		st1, a1 := Step(prev, in)
		st2, a2 := Step(prev, in)
		if !reflect.DeepEqual(st1, st2) || !reflect.DeepEqual(a1, a2) {
			t.Fatalf("two steps from the same arguments differ")
		}
		if fmt.Sprintf("%#v", prev) != snapshot {
			t.Fatalf("Step modified the previous state")
		}
		w.round()
	}
}
