package control

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/failover"
)

// The property test simulates a site of a few servers, each running Step
// over its own, possibly lagging, view of membership and records, through
// random crashes, restarts, hangs and false deaths (flaps), and checks the
// guarantees of doc.go against what the servers really record.

const (
	simTick     = 250 * time.Millisecond
	simDetect   = 4 // ticks of silence before peers declare a server dead (failover_after)
	simQuiet    = 100
	simChaos    = 160
	simHandoff  = 3 * time.Second
	simFailback = 2 * time.Second
)

type simServer struct {
	rec      Record
	st       State
	act      Actions
	running  bool
	hungTill int // tick the hang ends; 0 when not hung
	stopped  int // tick it stopped running (crash or hang)
	flapTill int // falsely declared dead until this tick
	refuted  time.Time
	fresh    bool // restarted: the next publish is a new version
	pub      Record
	cams     map[string]int // camera -> tick its pipeline started
	lastHad  map[string]int // camera -> last tick it had a pipeline
}

type simView struct {
	alive map[string]bool
	recs  map[string]Record
}

type sim struct {
	t       *testing.T
	r       *rand.Rand
	names   []string
	srv     map[string]*simServer
	lag     map[string]int
	history []simView
	tick    int
	// notices, for the announcer checks: per subject, whether the PSIM
	// was last told "down" (known=false after a server lost its memory).
	psimDown  map[string]bool
	psimKnown map[string]bool
	agree     bool
	failures  []string
	trace     []string // what happened, shown when a check fails
}

func (s *sim) tracef(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%3d ", s.tick)+fmt.Sprintf(format, args...))
}

func newSim(t *testing.T, seed uint64, agree bool) *sim {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &sim{t: t, r: r, srv: map[string]*simServer{}, lag: map[string]int{}, psimDown: map[string]bool{}, psimKnown: map[string]bool{}, agree: agree}
	n := 2 + r.IntN(3)
	for i := range n {
		s.names = append(s.names, fmt.Sprintf("s%d", i))
	}
	for _, name := range s.names {
		var buddies []string
		for _, b := range r.Perm(n) {
			if s.names[b] != name && r.IntN(3) > 0 {
				buddies = append(buddies, s.names[b])
			}
		}
		rec := Record{Name: name, Buddies: buddies, Failback: r.IntN(3) > 0, Timing: "t"}
		if r.IntN(4) == 0 {
			rec.Mode = failover.ModeCritical
		}
		if r.IntN(2) == 0 {
			rec.Capacity.Cameras = 1 + r.IntN(5)
		}
		for c := range r.IntN(4) {
			rec.Cameras = append(rec.Cameras, failover.Camera{Name: fmt.Sprintf("c%d", c), Critical: r.IntN(3) == 0})
		}
		s.srv[name] = &simServer{rec: rec, running: true, fresh: true, pub: rec, cams: map[string]int{}, lastHad: map[string]int{}}
		if !agree {
			s.lag[name] = r.IntN(3)
		}
		s.psimKnown[name] = true
	}
	return s
}

func (s *sim) now() time.Time { return t0.Add(time.Duration(s.tick) * simTick) }

func (s *sim) failf(format string, args ...any) {
	if len(s.failures) < 5 {
		s.failures = append(s.failures, fmt.Sprintf("tick %d: ", s.tick)+fmt.Sprintf(format, args...))
	}
}

// aliveInViews: a server that stopped is declared dead after simDetect
// ticks; a flapping one is declared dead while it runs.
func (s *sim) aliveInViews(x *simServer) bool {
	if x.flapTill > s.tick {
		return false
	}
	return x.running || s.tick-x.stopped < simDetect
}

func (s *sim) snapshot() simView {
	v := simView{alive: map[string]bool{}, recs: map[string]Record{}}
	for _, name := range s.names {
		x := s.srv[name]
		v.alive[name] = s.aliveInViews(x)
		v.recs[name] = x.pub
	}
	return v
}

func (s *sim) inputs(name string) Inputs {
	x := s.srv[name]
	v := s.history[max(0, len(s.history)-1-s.lag[name])]
	in := Inputs{Now: s.now(), Clustered: true, Records: map[string]Record{}, Credentials: map[string]bool{},
		DeclaredDeadAt: x.refuted,
		Config: Config{Self: x.rec, FailoverAfter: simDetect * simTick, FailbackAfter: simFailback,
			HandoffTimeout: simHandoff, AdoptionReport: 2 * time.Second, ServerUpHoldDown: 3 * time.Second}}
	for _, n := range s.names {
		in.Members = append(in.Members, Member{Name: n, Up: v.alive[n]})
		if n != name {
			in.Records[n] = v.recs[n]
		}
		for _, c := range s.srv[n].rec.Cameras {
			in.Credentials[failover.CameraID(n, c.Name)] = true
		}
	}
	for _, id := range slices.Sorted(mapKeys(x.cams)) {
		st := PipelineConnecting
		if x.cams[id] < s.tick {
			st = PipelineRecording
			if f := s.footage(x, id); !f.From.IsZero() {
				if in.Footage == nil {
					in.Footage = map[string]Footage{}
				}
				in.Footage[id] = f
			}
		}
		in.Pipelines = append(in.Pipelines, Pipeline{ID: id, State: st})
	}
	return in
}

// footage is what x's index holds of camera id's current run: its first
// frame comes the tick after the pipeline started, and the index lags the
// clock by a tick.
func (s *sim) footage(x *simServer, id string) Footage {
	started, ok := x.cams[id]
	if !ok {
		return Footage{}
	}
	from, to := t0.Add(time.Duration(started+1)*simTick), s.now().Add(-simTick)
	if to.Before(from) {
		return Footage{}
	}
	return Footage{From: from, To: to}
}

// recordedElsewhere: some other server records id now, or did within the
// detection window and has stopped since (its crash is a race no rule can
// win: nobody knows yet).
func (s *sim) recordedElsewhere(self, id string) bool {
	for _, n := range s.names {
		if n == self {
			continue
		}
		x := s.srv[n]
		if _, ok := x.cams[id]; ok && x.running {
			return true
		}
		if last, ok := x.lastHad[id]; ok && !x.running && s.tick-last <= simDetect+3 {
			return true
		}
	}
	return false
}

func (s *sim) step(name string) {
	x := s.srv[name]
	prev := x.st
	st, act := Step(prev, s.inputs(name))
	x.st, x.act = st, act

	// While a camera's home is not running, no step stops a camera that no
	// other server records, unless the plan gives it nobody (capacity) or
	// the handoff timeout ran out.
	now := s.now()
	for id := range x.cams {
		if slices.Contains(act.Cameras, id) {
			continue
		}
		home := s.srv[homeOf(id)]
		if home.running || s.recordedElsewhere(name, id) {
			continue
		}
		if _, owned := st.Plan.Owner[id]; !owned {
			continue
		}
		if d, ok := prev.Releasing[id]; ok && !now.Before(d) {
			continue
		}
		s.failf("%s stopped %s while its home is down and nobody else records it (plan owner %q, view alive %v)",
			name, id, st.Plan.Owner[id], st.Alive)
	}

	// Make before break: a camera that stops here while its new owner
	// runs stops only once the owner's durable footage overlaps what this
	// server wrote, unless the handoff timeout ran out.
	for id := range x.cams {
		owner := st.Plan.Owner[id]
		if slices.Contains(act.Cameras, id) || owner == "" || owner == name || !s.srv[owner].running {
			continue
		}
		if d, ok := prev.Releasing[id]; ok && !now.Before(d) {
			continue
		}
		if x.cams[id] >= s.tick-1 {
			continue // its pipeline here never recorded: nothing to overlap
		}
		mine, theirs := s.footage(x, id), s.footage(s.srv[owner], id)
		if theirs.From.IsZero() || mine.To.Before(theirs.From) {
			s.failf("%s stopped %s before %s's footage overlaps its own (mine %v, theirs %v)", name, id, owner, mine, theirs)
		}
	}

	cams := map[string]int{}
	for _, id := range act.Cameras {
		if t, ok := x.cams[id]; ok {
			cams[id] = t
		} else {
			cams[id] = s.tick
		}
		x.lastHad[id] = s.tick
	}
	x.cams = cams
	if act.Publish != nil {
		p := x.pub
		p.Claims, p.Recording, p.Durable, p.Stable = act.Publish.Claims, act.Publish.Recording, act.Publish.Durable, act.Publish.Stable
		p.Version = x.pub.Version
		if x.fresh || !reflect.DeepEqual(p, x.pub) {
			p.Version++
			x.fresh = false
		}
		x.pub = p
	}
	for _, n := range act.Notices {
		s.tracef("%s notice %s %s %v", name, n.Type, n.FailedServer, n.Cameras)
	}
	if act.Settling != prev.settling() {
		s.tracef("%s settling=%v cams=%v", name, act.Settling, act.Cameras)
	}
	if s.agree {
		s.checkNotices(name, act)
	}
}

// checkNotices: with agreeing views, the PSIM hears server.down and
// server.up of each server alternately: one announcer per event, one
// notice per episode.
//
// A server its peers declared dead while it runs (a flap) does not know it
// until it refutes: its view of itself disagrees with everyone's, so the
// notices sent meanwhile are not held to this (but the PSIM hears them).
func (s *sim) checkNotices(name string, act Actions) {
	flapping := false
	for _, x := range s.srv {
		flapping = flapping || x.flapTill > s.tick
	}
	for _, n := range act.Notices {
		switch n.Type {
		case TypeServerDown:
			if s.psimKnown[n.FailedServer] && s.psimDown[n.FailedServer] && !flapping {
				s.failf("%s sent a second server.down for %s in one episode", name, n.FailedServer)
			}
			s.psimDown[n.FailedServer], s.psimKnown[n.FailedServer] = true, true
		case TypeServerUp:
			if s.psimKnown[n.FailedServer] && !s.psimDown[n.FailedServer] && !flapping {
				s.failf("%s sent server.up for %s, which the PSIM was not told is down", name, n.FailedServer)
			}
			s.psimDown[n.FailedServer], s.psimKnown[n.FailedServer] = false, true
		}
	}
}

func (s *sim) chaos() {
	r := s.r
	running := 0
	for _, n := range s.names {
		if s.srv[n].running {
			running++
		}
	}
	x := s.srv[s.names[r.IntN(len(s.names))]]
	switch r.IntN(40) {
	case 0: // crash
		if x.running && x.hungTill == 0 && running > 1 {
			x.running, x.stopped = false, s.tick
			x.st, x.cams = State{}, map[string]int{}
			s.tracef("crash %s", x.rec.Name)
		}
	case 1: // restart
		if !x.running && x.hungTill == 0 && s.tick-x.stopped > simDetect {
			x.running, x.fresh = true, true
			s.tracef("restart %s", x.rec.Name)
			// It lost its memory: what it announced is unknown.
			for _, n := range s.names {
				s.psimKnown[n] = false
			}
		}
	case 2: // hang
		if x.running && x.hungTill == 0 && running > 1 {
			x.running, x.stopped, x.hungTill = false, s.tick, s.tick+1+r.IntN(12)
			s.tracef("hang %s until %d", x.rec.Name, x.hungTill)
		}
	case 3: // flap: declared dead while it runs
		if x.running && x.flapTill <= s.tick {
			x.flapTill = s.tick + 1 + r.IntN(6)
			s.tracef("flap %s until %d", x.rec.Name, x.flapTill)
		}
	}
}

func (s *sim) run() {
	for s.tick = 0; s.tick < simChaos+simQuiet; s.tick++ {
		if s.tick < simChaos {
			s.chaos()
		}
		for _, n := range s.names {
			x := s.srv[n]
			if x.hungTill != 0 && x.hungTill <= s.tick {
				x.running, x.hungTill = true, 0
				if s.tick-x.stopped >= simDetect {
					x.refuted = s.now()
				}
			}
			if x.flapTill == s.tick && x.running {
				x.refuted = s.now()
			}
		}
		for _, x := range s.srv {
			if !x.running && s.aliveInViews(x) {
				// An announcer that stopped and is not yet declared dead
				// announces nothing: what it should have said is lost
				// (doc.go, Limits), so the PSIM's state is unknown.
				for _, n := range s.names {
					s.psimKnown[n] = false
				}
			}
		}
		s.history = append(s.history, s.snapshot())
		for _, n := range s.names {
			if s.srv[n].running {
				s.step(n)
			}
		}
	}
	s.converged()
}

// converged: once views agree and things are quiet, every running server
// has the same plan, records exactly what the plan gives it, and every
// planned camera is recorded by exactly one server.
func (s *sim) converged() {
	var ref *failover.Plan
	by := map[string][]string{}
	for _, n := range s.names {
		x := s.srv[n]
		if !x.running {
			continue
		}
		if ref == nil {
			ref = &x.st.Plan
		} else if !ref.Equal(x.st.Plan) {
			s.failf("plans differ once views agree: %v vs %s's %v", ref.Owner, n, x.st.Plan.Owner)
		}
		if want := x.st.Plan.For(n); !slices.Equal(x.act.Cameras, want) {
			s.failf("%s records %v, its plan gives it %v", n, x.act.Cameras, want)
		}
		for id := range x.cams {
			by[id] = append(by[id], n)
		}
	}
	if ref == nil {
		return
	}
	for id, owner := range ref.Owner {
		if got := by[id]; len(got) != 1 || got[0] != owner {
			s.failf("camera %s recorded by %v, planned on %s", id, got, owner)
		}
	}
}

// TestPropertyRandomSites runs the simulation over many random sites and
// event sequences, with lagging views and with agreeing ones.
func TestPropertyRandomSites(t *testing.T) {
	seeds := 80
	if testing.Short() {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		for _, agree := range []bool{false, true} {
			s := newSim(t, seed, agree)
			s.run()
			if len(s.failures) > 0 {
				var site []string
				for _, n := range s.names {
					r := s.srv[n].rec
					site = append(site, fmt.Sprintf("%s buddies=%v cap=%d mode=%q failback=%v cams=%v", n, r.Buddies, r.Capacity.Cameras, r.Mode, r.Failback, r.Cameras))
				}
				t.Fatalf("seed %d agree=%v\nsite:\n  %s\n%s\ntrace:\n%s", seed, agree, strings.Join(site, "\n  "), strings.Join(s.failures, "\n"), strings.Join(s.trace, "\n"))
			}
		}
	}
}

func (s State) settling() bool { return s.lastRound.Before(s.settleUntil) }
