package control

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/failover"
)

// raiser compares two steps and says what a technician and the PSIM must
// learn. Every event about the site is raised by exactly one server, the
// one the rule names, computed from the shared view; every server keeps
// the bookkeeping, so whichever server is the announcer when a condition
// clears knows it was raised.
type raiser struct {
	prev State
	st   *State
	in   Inputs
	self string
	act  *Actions
	// quiet keeps the bookkeeping and announces nothing (settling).
	quiet bool
}

func (r *raiser) event(e Event) {
	if !r.quiet {
		r.act.Events = append(r.act.Events, e)
	}
}

func (r *raiser) notice(n Notice) {
	if !r.quiet {
		r.act.Notices = append(r.act.Notices, n)
	}
}

// servers raises server.down and server.up. Every flap is logged (by the
// announcer); the PSIM gets one server.down when an episode starts and one
// server.up when the server has stayed up for the hold-down, so a lossy
// network does not flood it.
func (r *raiser) servers() {
	prev, st, now := r.prev, r.st, r.in.Now
	st.episodes = maps.Clone(st.episodes) // st starts as prev, less what a recovery forgot
	if st.episodes == nil {
		st.episodes = map[string]episode{}
	}
	hold := r.in.Config.holdDown()
	left := map[string]bool{}
	for _, m := range r.in.Members {
		left[m.Name] = m.Left && !m.Up
	}
	for _, name := range sortedKeys(prev.Alive) {
		if st.Alive[name] || name == r.self {
			continue
		}
		announcer := st.Announcer(name)
		announce := announcer == r.self && !r.quiet
		ep, open := st.episodes[name]
		if left[name] && !open {
			// A clean stop is no failure: the server said goodbye (and
			// handed its cameras over first). No episode, no alarm.
			if announce {
				text := fmt.Sprintf("server %s stopped cleanly (it left the cluster)", name)
				r.event(Event{Type: TypeServerStopped, Severity: SeverityInfo, About: name, Text: text})
				r.notice(Notice{Type: TypeServerStopped, FailedServer: name, Text: text})
			}
			continue
		}
		if open && ep.told {
			ep.upSince = time.Time{}
			ep.flaps++
			st.episodes[name] = ep
			if announce {
				r.event(Event{Type: TypeServerDown, Severity: SeverityWarning, About: name,
					Text: fmt.Sprintf("server %s is down again (%d flap(s) since %s; the PSIM hears of its return once it stays up for %s)",
						name, ep.flaps, ep.down.UTC().Format("15:04:05"), hold)})
			}
			continue
		}
		// A settling server that is the announcer itself tells nobody:
		// the episode is untold, and its end is not notified either.
		st.episodes[name] = episode{down: now, told: announcer != r.self || !r.quiet}
		if announce {
			r.event(Event{Type: TypeServerDown, Severity: SeverityAlarm, About: name, Condition: ConditionServerDown(name),
				Text: fmt.Sprintf("server %s is down (no heartbeat for %s)", name, r.in.Config.FailoverAfter)})
			r.notice(Notice{Type: TypeServerDown, FailedServer: name, Text: fmt.Sprintf("server %s is down", name)})
		}
	}
	for _, name := range sortedKeys(st.Alive) {
		if name == r.self || prev.Alive[name] || len(prev.Records) == 0 {
			continue
		}
		if _, known := prev.Records[name]; !known {
			continue
		}
		if ep, open := st.episodes[name]; open {
			ep.upSince = now
			st.episodes[name] = ep
		}
		if st.Announcer(name) == r.self {
			r.event(Event{Type: TypeServerUp, Severity: SeverityInfo, About: name, Text: fmt.Sprintf("server %s is back", name)})
		}
	}
	for _, name := range sortedKeys(st.episodes) {
		ep := st.episodes[name]
		if ep.upSince.IsZero() || !st.Alive[name] || now.Sub(ep.upSince) < hold {
			continue
		}
		delete(st.episodes, name)
		if !ep.told || st.Announcer(name) != r.self {
			continue
		}
		text := fmt.Sprintf("server %s is up again and stayed up for %s (down since %s, %d flap(s))", name, hold, ep.down.UTC().Format("15:04:05"), ep.flaps)
		r.event(Event{Type: TypeAlarmResolved, Severity: SeverityInfo, About: name, Text: text, Resolves: []string{ConditionServerDown(name)}})
		r.notice(Notice{Type: TypeServerUp, FailedServer: name, Text: text})
	}
}

// takeovers raises failover.started for cameras newly adopted, notes
// cameras coming home, and reports both once they record.
func (r *raiser) takeovers() {
	prev, st, now := r.prev, r.st, r.in.Now
	st.pending = maps.Clone(prev.pending)
	if st.pending == nil {
		st.pending = map[string]takeover{}
	}
	add := func(key, home string, ids []string) {
		t, ok := st.pending[key]
		if !ok {
			t = takeover{home: home, started: now}
		}
		t.cameras = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(t.cameras), ids...))))
		st.pending[key] = t
	}
	newly := map[string][]string{}
	for _, id := range sortedKeys(st.Assigned) {
		if home := homeOf(id); home != r.self && !prev.Assigned[id] {
			newly[home] = append(newly[home], id)
		}
	}
	for _, home := range sortedKeys(newly) {
		ids := newly[home]
		r.event(Event{Type: TypeFailoverStarted, Severity: SeverityWarning, Cameras: ids, About: home,
			Text: fmt.Sprintf("adopting %d camera(s) of %s", len(ids), home)})
		add(home, home, ids)
	}
	// Failback: own cameras another alive server recorded last step.
	var back []string
	for _, id := range sortedKeys(st.Assigned) {
		if homeOf(id) == r.self && !prev.Assigned[id] {
			if owner := prev.Plan.Owner[id]; owner != "" && owner != r.self && prev.Alive[owner] {
				back = append(back, id)
			}
		}
	}
	if len(back) > 0 {
		add(failbackKey, "", back)
	}

	// Report: once every camera of a takeover records, or the report time
	// passed, name exactly the cameras that record now; the others are
	// named when they start. A camera given up before it was reported is
	// never named.
	recording := map[string]bool{}
	for _, p := range r.in.Pipelines {
		if p.State == PipelineRecording && st.Recording[p.ID] {
			recording[p.ID] = true
		}
	}
	st.announced = maps.Clone(prev.announced)
	if st.announced == nil {
		st.announced = map[string]bool{}
	}
	for _, key := range sortedKeys(st.pending) {
		t := st.pending[key]
		var left, rec []string
		for _, id := range t.cameras {
			switch {
			case !st.Assigned[id]: // given up before it was reported
			case recording[id]:
				rec = append(rec, id)
			default:
				left = append(left, id)
			}
		}
		late := now.Sub(t.started) >= r.in.Config.adoptionReport()
		switch {
		case len(rec) > 0 && (len(left) == 0 || late || t.told):
			r.report(t, rec, left)
			t.cameras, t.told, t.noticed = left, true, true
		case len(rec) == 0 && len(left) > 0 && late && !t.told:
			t.told = true
			t.cameras = left
			r.event(Event{Type: t.completedType(), Severity: SeverityWarning, Cameras: left, About: t.home,
				Text: fmt.Sprintf("%s records none of %d camera(s) %.2fs after the plan gave them; each is reported when it starts",
					r.self, len(left), now.Sub(t.started).Seconds())})
		default:
			t.cameras = slices.Sorted(slices.Values(append(left, rec...)))
		}
		if len(t.cameras) == 0 {
			delete(st.pending, key)
		} else {
			st.pending[key] = t
		}
	}
}

func (t takeover) completedType() string {
	if t.home == "" {
		return TypeFailbackCompleted
	}
	return TypeFailoverCompleted
}

// report sends the notice for the cameras of t that record now.
func (r *raiser) report(t takeover, rec, left []string) {
	took := r.in.Now.Sub(t.started).Seconds()
	if t.home == "" {
		r.event(Event{Type: TypeFailbackCompleted, Severity: SeverityInfo, Cameras: rec, About: r.self,
			Text: fmt.Sprintf("%d camera(s) back on %s, recording %.2fs after the plan returned them%s", len(rec), r.self, took, stillWaiting(left))})
		r.notice(Notice{Type: TypeFailbackCompleted, Cameras: rec, Serving: true})
		return
	}
	r.event(Event{Type: TypeFailoverCompleted, Severity: SeverityWarning, Cameras: rec, About: t.home,
		Text: fmt.Sprintf("%s now records %d adopted camera(s) of %s %.2fs after planning the takeover%s", r.self, len(rec), t.home, took, stillWaiting(left))})
	n := Notice{Type: TypeFailoverCompleted, FailedServer: t.home, Cameras: rec, Serving: true}
	if !t.noticed {
		n.Aspects = r.st.AspectsHeld(r.self, t.home)
	}
	r.notice(n)
	for _, id := range rec {
		r.st.announced[id] = true
	}
}

func stillWaiting(left []string) string {
	if len(left) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d more not recording yet", len(left))
}

// released tells the PSIM when an adopted camera it was told about stops
// being recorded here, unless it went home (the home's failback.completed
// says so).
func (r *raiser) released() {
	prev, st := r.prev, r.st
	for _, id := range sortedKeys(prev.Recording) {
		if st.Recording[id] || !st.announced[id] {
			continue
		}
		delete(st.announced, id)
		home := homeOf(id)
		owner := st.Plan.Owner[id]
		if owner == home {
			continue
		}
		why := "now recorded by " + owner
		if owner == "" {
			why = "no server can record it"
			for _, u := range st.Plan.Unplaced {
				if u.Camera == id {
					why = unplacedText(u.Reason)
				}
			}
		}
		text := fmt.Sprintf("%s no longer records %s: %s", r.self, id, why)
		r.event(Event{Type: TypeFailoverReleased, Severity: SeverityWarning, Cameras: []string{id}, About: home, Text: text})
		r.notice(Notice{Type: TypeFailoverReleased, FailedServer: home, Cameras: []string{id}, Text: text})
	}
}

func unplacedText(reason string) string {
	switch reason {
	case failover.ReasonCapacity:
		return "no candidate server has room (displaced by critical cameras or capacity short)"
	case failover.ReasonNoCandidateAlive:
		return "no candidate server is alive"
	default:
		return reason
	}
}

// capacity raises capacity.exceeded for cameras nobody can record and
// capacity.restored when they are recorded again: the lowest-named alive
// server announces both.
func (r *raiser) capacity() {
	prev, st := r.prev, r.st
	st.Unplaced = map[string]string{}
	for _, u := range st.Plan.Unplaced {
		st.Unplaced[u.Camera] = u.Reason
	}
	announce := st.SiteAnnouncer() == r.self
	var fresh, restored []string
	for _, id := range sortedKeys(st.Unplaced) {
		if prev.Unplaced[id] != st.Unplaced[id] {
			fresh = append(fresh, id)
		}
	}
	for _, id := range sortedKeys(prev.Unplaced) {
		if _, still := st.Unplaced[id]; !still && st.Plan.Owner[id] != "" {
			restored = append(restored, id)
		}
	}
	st.capacity = map[string][]string{}
	var resolved []string
	for _, cond := range sortedKeys(prev.capacity) {
		ids := prev.capacity[cond]
		if slices.ContainsFunc(ids, func(id string) bool { _, still := st.Unplaced[id]; return still }) {
			st.capacity[cond] = ids
		} else {
			resolved = append(resolved, cond)
		}
	}
	if len(restored) > 0 || len(resolved) > 0 {
		if announce {
			text := fmt.Sprintf("%d camera(s) recorded again: %s", len(restored), strings.Join(restored, ", "))
			r.event(Event{Type: TypeCapacityRestored, Severity: SeverityInfo, Cameras: restored, Text: text, Resolves: resolved})
			if len(restored) > 0 {
				r.notice(Notice{Type: TypeCapacityRestored, Cameras: restored, Text: text})
			}
		}
	}
	if len(fresh) > 0 {
		cond := "capacity/" + strings.Join(fresh, ",")
		st.capacity[cond] = fresh
		if announce {
			reason := st.Unplaced[fresh[0]]
			r.event(Event{Type: TypeCapacityExceeded, Severity: SeverityAlarm, Cameras: fresh, Condition: cond,
				Text: fmt.Sprintf("%d camera(s) cannot be recorded by any server (%s)", len(fresh), reason)})
			r.notice(Notice{Type: TypeCapacityExceeded, Cameras: fresh,
				Text: fmt.Sprintf("%d camera(s) unrecorded (%s): %s", len(fresh), reason, strings.Join(fresh, ", "))})
		}
	}
}

// configs raises config.mismatch when alive servers disagree on what must
// be the same site-wide (failover timing) or name buddies nobody is
// called. The lowest-named alive server reports it, once per finding.
func (r *raiser) configs() {
	st := r.st
	if st.SiteAnnouncer() != r.self {
		return
	}
	var findings []string
	mine := st.Records[r.self].Timing
	for _, name := range sortedKeys(st.Records) {
		rec := st.Records[name]
		if !st.Alive[name] {
			continue
		}
		if rec.Timing != "" && rec.Timing != mine {
			findings = append(findings, fmt.Sprintf("%s uses keepalive/failover_after %s, %s uses %s", name, rec.Timing, r.self, mine))
		}
		for _, b := range rec.Buddies {
			if _, ok := st.Records[b]; !ok {
				findings = append(findings, fmt.Sprintf("%s names buddy %q, which no server of the site is called", name, b))
			}
		}
	}
	key := strings.Join(findings, "; ")
	seen := st.findings
	st.findings = key
	if key != "" && key != seen {
		r.event(Event{Type: TypeConfigMismatch, Severity: SeverityWarning, Text: key})
	}
}

// credentials raises failover.no_credentials when adopted cameras lack
// the credentials their home replicates for longer than CredentialsGrace.
func (r *raiser) credentials(missing []string) {
	st, now := r.st, r.in.Now
	key := strings.Join(missing, ",")
	if key != st.missing {
		st.missing, st.missingSince, st.missingTold = key, now, false
	}
	if key != "" && !st.missingTold && now.Sub(st.missingSince) > CredentialsGrace {
		st.missingTold = true
		r.act.Logs = append(r.act.Logs, Log{Msg: "cannot record adopted cameras: their home has not replicated their credentials to this server (is it in the home's failover.buddies?)",
			Args: []any{"cameras", missing}})
		r.event(Event{Type: TypeNoCredentials, Severity: SeverityAlarm, Cameras: missing,
			Text: "adopted cameras have no credentials on this server: the home server must list it in [failover] buddies"})
	}
}

// pipelines raises camera.offline (or auth_failed, recording.stalled) when
// a pipeline goes offline and camera.online, resolving it, when it records
// again. The server recording the camera raises both.
func (r *raiser) pipelines() {
	st := r.st
	st.cameras = make(map[string]string, len(r.in.Pipelines))
	for _, p := range r.in.Pipelines {
		st.cameras[p.ID] = p.State
		was := r.prev.cameras[p.ID]
		switch {
		case p.State == PipelineOffline && was != PipelineOffline:
			typ := TypeCameraOffline
			switch p.Failure {
			case FailureAuth:
				typ = TypeCameraAuthFailed
			case FailureStalled:
				typ = TypeRecordingStalled
			}
			r.event(Event{Type: typ, Severity: SeverityAlarm, Cameras: []string{p.ID}, Condition: ConditionCamera(p.ID),
				Text: fmt.Sprintf("camera %s is offline: %s", p.ID, p.Error)})
			r.notice(Notice{Type: typ, Cameras: []string{p.ID}, Text: p.Error})
		case p.State == PipelineRecording && was == PipelineOffline:
			text := fmt.Sprintf("camera %s is recording again", p.ID)
			r.event(Event{Type: TypeCameraOnline, Severity: SeverityInfo, Cameras: []string{p.ID}, Text: text, Resolves: []string{ConditionCamera(p.ID)}})
			r.notice(Notice{Type: TypeCameraOnline, Cameras: []string{p.ID}, Text: text, Serving: true})
		}
	}
}
