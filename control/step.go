package control

import (
	"maps"
	"slices"
	"time"

	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/failover"
)

// homeOf is the home server of a camera id "home/name".
var homeOf = camera.HomeOf

// Step runs one round of the control loop: from the previous state and
// what this server sees now, the next state and what to do. It is pure:
// equal arguments give equal results, and prev is not modified.
func Step(prev State, in Inputs) (State, Actions) {
	self := in.Config.Self.Name
	now := in.Now
	st := prev
	var act Actions

	// A server that was hung (SIGSTOP, a VM pause, a stalled disk) for
	// longer than half of failover_after has been, or is about to be,
	// declared dead by its buddies: it counts as freshly recovered, so its
	// cameras come back only after failback_after of health, like after a
	// crash. The same holds when peers declared it dead while it ran: they
	// adopted its cameras, so it drops its claims and settles as after a
	// pause, and a flapping server never pulls cameras back and forth.
	recovered := false
	if !prev.lastRound.IsZero() && now.Sub(prev.lastRound) > in.Config.FailoverAfter/2 {
		act.Logs = append(act.Logs, Log{Msg: "this server was unresponsive; treating it as recovered from a failure",
			Args: []any{"paused", now.Sub(prev.lastRound).Round(time.Millisecond)}})
		recovered = true
	}
	if in.Clustered && !prev.healthySince.IsZero() && in.DeclaredDeadAt.After(prev.healthySince) {
		act.Logs = append(act.Logs, Log{Msg: "peers declared this server dead; treating it as recovered from a failure: its cameras come back only after failback_after",
			Args: []any{"failback_after", in.Config.FailbackAfter}})
		recovered = true
	}
	if recovered {
		st.healthySince = now
		st.settleUntil = now.Add(in.Config.FailoverAfter)
		st.Assigned = map[string]bool{} // its claims died with it
		// What it knew of peers' down episodes is stale: peers announced
		// what happened meanwhile, and it is not stable, so they go on.
		st.episodes = nil
	}
	if st.healthySince.IsZero() {
		st.healthySince = now
		if in.Clustered {
			st.settleUntil = now.Add(in.Config.FailoverAfter)
		}
	}
	st.lastRound = now
	stable := now.Sub(st.healthySince) >= in.Config.FailbackAfter
	st.maintenanceStart(prev, in)

	st.Alive = map[string]bool{self: true}
	for _, m := range in.Members {
		if m.Up {
			st.Alive[m.Name] = true
		}
	}
	st.Records, st.stale = trustedRecords(prev, st.Alive, in.Records, self)
	me := in.Config.Self
	me.Name = self
	// Peers see this server stable only once its record says so: it counts
	// itself stable from the step after it published it, so that every
	// server picks the same announcer.
	me.Claims, me.Recording, me.Stable = sortedKeys(st.Assigned), sortedKeys(prev.Recording), stable && prev.publishedStable
	me.Standbys = sortedKeys(prev.Standby)
	me.Reclaim = st.reclaiming(now)
	st.publishedStable = stable
	st.Records[self] = me

	if now.Before(st.settleUntil) {
		// Settling: after a start or a wake-up this server's view of who
		// records what may be stale (peers adopted its cameras while it
		// was away). It claims nothing and changes nothing until fresh
		// records have had time to arrive, so that a stale claim never
		// wins cameras back from a buddy before failback_after.
		//
		// It still watches the membership and the records, so that what it
		// compares against once settled is recent: a change it slept
		// through was announced by a server that was awake.
		// It keeps the bookkeeping of episodes, but announces nothing.
		act.Settling = true
		(&raiser{prev: prev, st: &st, in: in, self: self, act: &act, quiet: true}).servers()
		act.Cameras = sortedKeys(prev.Recording)
		act.Standby = standbyList(prev.Standby)
		if in.Clustered {
			act.Publish = &Publish{Recording: act.Cameras, Durable: durable(act.Cameras, in.Footage, in.Pipelines), Stable: stable, Reclaim: me.Reclaim,
				Standbys: StandbyIDs(act.Standby), Live: live(in.Pipelines)}
		}
		return st, act
	}

	st.Plan = failover.Compute(PlanInput(st.Records, st.Alive))
	st.Assigned = map[string]bool{}
	for _, id := range st.Plan.For(self) {
		st.Assigned[id] = true
	}

	// Make before break: a camera that leaves this server keeps recording
	// here until its new owner's durable footage overlaps this server's
	// (handedOver), or until the handoff deadline.
	// A camera the plan gives nobody (displaced by a critical one, or its
	// owner not alive) has no new owner to wait for.
	st.Releasing = map[string]time.Time{}
	act.Releasing = map[string]string{}
	for _, id := range sortedKeys(prev.Recording) {
		if st.Assigned[id] {
			continue
		}
		owner := st.Plan.Owner[id]
		if owner == "" || !st.Alive[owner] || handedOver(in, st.Records[owner], id) {
			continue
		}
		deadline, ok := prev.Releasing[id]
		if !ok {
			deadline = now.Add(in.Config.handoffTimeout())
		}
		if now.Before(deadline) || ownerStuck(in, st.Records[owner], id) {
			st.Releasing[id] = deadline
			act.Releasing[id] = owner
		}
	}

	// What to record: assigned plus releasing, if this server can reach it.
	var missing []string
	st.Recording = map[string]bool{}
	for _, id := range append(sortedKeys(st.Assigned), sortedKeys(st.Releasing)...) {
		if in.Credentials[id] {
			st.Recording[id] = true
		} else if homeOf(id) != self {
			missing = append(missing, id)
		}
	}
	act.Cameras = sortedKeys(st.Recording)
	act.Standby = st.standbys(prev, self, in)
	if in.Clustered {
		act.Publish = &Publish{Claims: sortedKeys(st.Assigned), Recording: act.Cameras, Durable: durable(act.Cameras, in.Footage, in.Pipelines), Stable: stable, Reclaim: me.Reclaim,
			Standbys: StandbyIDs(act.Standby), Live: live(in.Pipelines)}
	}

	r := raiser{prev: prev, st: &st, in: in, self: self, act: &act}
	r.servers()
	r.maintenance()
	r.takeovers()
	r.released()
	r.capacity()
	r.configs()
	r.credentials(missing)
	r.pipelines()
	r.standby()
	return st, act
}

// trustedRecords returns the peers' records the plan may use, and the
// versions still distrusted. A server seen coming back from the dead still
// has the record it had before it died: its claims and stability are from
// then. Until it publishes a newer version, it claims nothing, records
// nothing and is not stable, so a stale claim cannot pull cameras back.
func trustedRecords(prev State, alive map[string]bool, in map[string]Record, self string) (map[string]Record, map[string]uint64) {
	out := make(map[string]Record, len(in)+1)
	stale := map[string]uint64{}
	for name, rec := range in {
		if name == self {
			continue
		}
		rec.Name = name
		if v, ok := prev.stale[name]; ok && v == rec.Version && alive[name] {
			stale[name] = v
		} else if _, known := prev.Records[name]; known && alive[name] && !prev.Alive[name] {
			stale[name] = rec.Version
		}
		if _, ok := stale[name]; ok {
			rec.Claims, rec.Recording, rec.Durable, rec.Stable, rec.Live = nil, nil, nil, false, nil
		}
		out[name] = rec
	}
	return out, stale
}

// PlanInput is the planner's input for records and a membership verdict:
// what Step plans from, and what a plan preview ("if rec-a fails") must
// plan from to say the same.
//
// Standby sessions count against their server's bitrate capacity
// (standby.go).
func PlanInput(records map[string]Record, alive map[string]bool) failover.Input {
	return planInput(records, alive, standbyLoad(records, alive))
}

// plannerServer is the planner's view of a record.
func plannerServer(r Record, alive bool) failover.Server {
	return failover.Server{
		Name:      r.Name,
		Alive:     alive,
		Stable:    alive && r.Stable,
		Capacity:  r.Capacity,
		Buddies:   r.Buddies,
		Mode:      r.Mode,
		Failback:  r.Failback || r.Reclaim,
		Draining:  r.Maintenance,
		Cameras:   r.Cameras,
		Recording: r.Claims,
	}
}

// Announcer is the one server that reports the failure (and the return) of
// server: its first alive buddy, else the lowest-named alive server other
// than itself. Every server computes it from its own view, so once views
// agree one server announces. Servers that are Stable (up for
// failback_after) come first: a server that just started or woke up has
// no memory of what was announced before, so it takes over announcing
// only once it has watched the site for a while.
func (s State) Announcer(server string) string {
	for _, stableOnly := range []bool{true, false} {
		if rec, ok := s.Records[server]; ok {
			for _, b := range rec.Buddies {
				if b != server && s.Alive[b] && (!stableOnly || s.Records[b].Stable) {
					return b
				}
			}
		}
	}
	return s.announcer(server)
}

// SiteAnnouncer is the one server that reports what concerns the whole
// site (cameras nobody can record, config mismatches): the lowest-named
// alive Stable server, else the lowest-named alive server.
func (s State) SiteAnnouncer() string { return s.announcer("") }

func (s State) announcer(except string) string {
	for _, stableOnly := range []bool{true, false} {
		best := ""
		for name, ok := range s.Alive {
			if ok && name != except && (!stableOnly || s.Records[name].Stable) && (best == "" || name < best) {
				best = name
			}
		}
		if best != "" {
			return best
		}
	}
	return ""
}

// AspectsHeld lists the aspects of home that self holds: a dead home's
// aspects follow its first alive buddy.
func (s State) AspectsHeld(self, home string) []Aspect {
	rec, ok := s.Records[home]
	if !ok || s.Alive[home] {
		return nil
	}
	for _, b := range rec.Buddies {
		if s.Alive[b] {
			if b == self {
				return rec.Aspects
			}
			return nil
		}
	}
	return nil
}

// Stable reports whether this server counts as healthy for failback_after
// as of the last step.
func (s State) Stable(now time.Time, failbackAfter time.Duration) bool {
	return !s.healthySince.IsZero() && now.Sub(s.healthySince) >= failbackAfter
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
