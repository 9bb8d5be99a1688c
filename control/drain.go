package control

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/camera"
)

// DrainStatus is where a server's maintenance stands, for the API, the
// page and `buddyrec drain`.
type DrainStatus struct {
	// Since is when this server's loop first saw the maintenance.
	Since time.Time `json:"since"`
	// Complete: every camera that can move has been handed over (its new
	// owner's footage overlaps this server's, or the handoff timed out).
	Complete bool `json:"complete"`
	// Moved maps the cameras this server recorded when the drain began,
	// and that others record now, to their new server.
	Moved map[string]string `json:"moved"`
	// Kept are the cameras this server still records: no other candidate
	// has room for them.
	Kept []string `json:"kept"`
	// Unplaced are the cameras it recorded that nobody records now.
	Unplaced []string `json:"unplaced,omitempty"`
	// from are the cameras recorded here when the drain began.
	from []string
}

// reclaimFor bounds how long a server that left maintenance publishes
// Reclaim: long enough to become stable and take every camera back.
func (c Config) reclaimFor() time.Duration {
	return c.FailbackAfter + 2*c.handoffTimeout()
}

// maintenanceStart notes a change of this server's maintenance before the
// plan is made: leaving it starts the reclaim, so that the cameras come
// back even with failback off (a drain is planned; its end means "take
// them back", which failback = false does not forbid).
func (st *State) maintenanceStart(prev State, in Inputs) {
	now := in.Now
	st.draining = in.Config.Self.Maintenance
	if prev.draining && !st.draining {
		st.reclaimUntil = now.Add(in.Config.reclaimFor())
	}
	if !now.Before(st.reclaimUntil) {
		st.reclaimUntil = time.Time{}
	}
}

// reclaiming reports whether this server publishes Reclaim this step.
func (st *State) reclaiming(now time.Time) bool { return now.Before(st.reclaimUntil) }

// maintenance raises server.maintenance and server.maintenance_ended and
// keeps State.Drain. The draining server itself tells: when the drain
// begins (an event), and once the handover is complete (an event and a
// notice naming each moved camera's new server, and what it keeps).
func (r *raiser) maintenance() {
	prev, st, now := r.prev, r.st, r.in.Now
	self := r.self
	if st.reclaiming(now) {
		// The reclaim ends once every own camera the plan gives this
		// server records here and no other server still runs it.
		done := true
		for _, c := range r.in.Config.Self.Cameras {
			id := camera.New(self, c.Name).String()
			if st.Plan.Owner[id] != self {
				continue
			}
			if r.in.Footage[id].From.IsZero() || recordedByPeer(st, self, id) {
				done = false
			}
		}
		if done {
			st.reclaimUntil = time.Time{}
		}
	}
	if !st.draining {
		if prev.Drain != nil {
			st.Drain = nil
			text := fmt.Sprintf("%s left maintenance; its cameras come back", self)
			r.event(Event{Type: TypeServerMaintenanceEnded, Severity: SeverityInfo, About: self, Text: text})
			r.notice(Notice{Type: TypeServerMaintenanceEnded, FailedServer: self, Text: text})
		}
		return
	}
	d := DrainStatus{Since: now, from: sortedKeys(prev.Recording)}
	if prev.Drain != nil {
		d = *prev.Drain
	}
	wasComplete := d.Complete
	d.Moved, d.Kept, d.Unplaced = map[string]string{}, sortedKeys(st.Assigned), nil
	for _, id := range d.from {
		switch owner := st.Plan.Owner[id]; {
		case owner == self:
		case owner == "":
			d.Unplaced = append(d.Unplaced, id)
		default:
			d.Moved[id] = owner
		}
	}
	// Complete once nothing is waiting for its new owner: a camera kept
	// past its handoff deadline (the owner cannot record it) stays here.
	d.Complete = true
	for _, id := range sortedKeys(st.Releasing) {
		if now.Before(st.Releasing[id]) {
			d.Complete = false
		} else {
			d.Kept = append(d.Kept, id)
		}
	}
	slices.Sort(d.Kept)
	st.Drain = &d
	what := "entered maintenance"
	if r.in.Stopping {
		what = "is stopping"
	}
	if prev.Drain == nil {
		r.event(Event{Type: TypeServerMaintenance, Severity: SeverityInfo, About: self,
			Text: fmt.Sprintf("%s %s: handing %d camera(s) to its buddies, make-before-break", self, what, len(d.from))})
	}
	if !d.Complete || wasComplete {
		return
	}
	moved := slices.Sorted(maps.Keys(d.Moved))
	state := "in maintenance"
	if r.in.Stopping {
		state = "stopping"
	}
	text := fmt.Sprintf("%s %s: %d camera(s) handed over (%s)", self, state, len(moved), movedText(d.Moved))
	if len(d.Kept) > 0 {
		text += fmt.Sprintf("; %d kept here, no other server has room: %s", len(d.Kept), strings.Join(d.Kept, ", "))
	}
	if len(d.Unplaced) > 0 {
		text += fmt.Sprintf("; %d recorded by nobody: %s", len(d.Unplaced), strings.Join(d.Unplaced, ", "))
	}
	sev := SeverityInfo
	if len(d.Kept) > 0 || len(d.Unplaced) > 0 {
		sev = SeverityWarning
	}
	r.event(Event{Type: TypeServerMaintenance, Severity: sev, About: self, Cameras: moved, Text: text})
	r.notice(Notice{Type: TypeServerMaintenance, FailedServer: self, Cameras: moved, Moved: maps.Clone(d.Moved), Text: text})
}

// recordedByPeer: another server's record says it runs camera id.
func recordedByPeer(st *State, self, id string) bool {
	for name, rec := range st.Records {
		if name != self && st.Alive[name] && slices.Contains(rec.Recording, id) {
			return true
		}
	}
	return false
}

// movedText summarises moved cameras per new server: "2 to rec-b, 1 to rec-c".
func movedText(moved map[string]string) string {
	per := map[string]int{}
	for _, s := range moved {
		per[s]++
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(per)) {
		parts = append(parts, fmt.Sprintf("%d to %s", per[s], s))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Reclaiming reports whether this server, having left maintenance, is
// still taking its cameras back.
func (s State) Reclaiming() bool { return !s.reclaimUntil.IsZero() }
