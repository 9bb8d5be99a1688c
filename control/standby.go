package control

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/buddyrec/buddyrec/failover"
)

// Standby modes a home asks for its critical cameras ([failover] standby).
// The values are config's.
const (
	StandbyCold   = "cold"
	StandbyHot    = "hot"
	StandbyMirror = "mirror"
)

// Event types of the standby rules.
const (
	// TypeStandbyUnavailable: the camera refused this server's standby
	// session (stream limit, 453/503, credentials); its failover is cold.
	TypeStandbyUnavailable = "standby.unavailable"
	// TypeStandbyAvailable: the standby session works again (or is no
	// longer needed); it resolves standby.unavailable.
	TypeStandbyAvailable = "standby.available"
)

// StandbyYieldAfter is how long a session this server already has (it
// recorded the camera, or held its standby) goes on as a standby while
// the home does not record the camera: the home's connect and first
// keyframe after a failback, during which a mirror keeps its copy whole.
// Longer, the session closes, so that a camera with a stream limit can
// serve the home.
const StandbyYieldAfter = 5 * time.Second

// ConditionStandby is the condition of a standby.unavailable alarm.
func ConditionStandby(id string) string { return "standby/" + id }

// Standby is one standby session: Server keeps its own session to Camera
// of Home while Home records it, so that taking it over loses nothing.
type Standby struct {
	Camera string
	Home   string
	// Server is the buddy the planner would give the camera if Home died.
	Server string
	// Mode is StandbyHot (an in-memory ring, written on takeover) or
	// StandbyMirror (recorded to Server's disk all the time).
	Mode string
	// BitrateMbps is what the session costs Server's capacity.
	BitrateMbps float64
}

// StandbyPlacement is where every standby session of the site goes: for
// each alive home whose Standby mode is hot or mirror, each of its
// critical cameras goes to the server failover.Compute gives it with the
// home marked dead — the server that would adopt it — if that server is
// another alive one. Keyed by camera id.
//
// Sessions cost their server capacity (Capacity.BitrateMbps: the planner
// has one bitrate dimension, what a server can ingest; a hot session uses
// the network, a mirror the network and the disk). So that the placement
// never depends on itself, homes are taken in name order and each home's
// plan sees the capacity the sessions placed for the homes before it
// took; the records' published Standbys are not read. It is pure: every
// server computes the same placement from the same view.
//
// Limit: the real plan after a failure (PlanInput) subtracts the sessions
// of every other alive home, not only of those named before the failed
// one. When bitrate capacity is that tight the adopter may differ from
// the standby's server; that camera's failover is then cold.
func StandbyPlacement(records map[string]Record, alive map[string]bool) map[string]Standby {
	out := map[string]Standby{}
	reserved := map[string]float64{}
	for _, home := range sortedKeys(records) {
		rec := records[home]
		if !alive[home] || (rec.Standby != StandbyHot && rec.Standby != StandbyMirror) {
			continue
		}
		var critical []failover.Camera
		for _, c := range rec.Cameras {
			if c.Critical {
				critical = append(critical, c)
			}
		}
		if len(critical) == 0 {
			continue
		}
		up := make(map[string]bool, len(alive))
		for name, a := range alive {
			up[name] = a && name != home
		}
		in := planInput(records, up, reserved)
		plan := failover.Compute(in)
		for _, c := range critical {
			id := home + "/" + c.Name
			owner := plan.Owner[id]
			if owner == "" || owner == home || !alive[owner] {
				continue
			}
			out[id] = Standby{Camera: id, Home: home, Server: owner, Mode: rec.Standby, BitrateMbps: c.BitrateMbps}
			reserved[owner] += c.BitrateMbps
		}
	}
	return out
}

// standbyLoad is the bitrate each server's published standby sessions
// hold for homes that are alive: a session for a dead home's camera is
// that camera's recording now, counted by the planner as such.
func standbyLoad(records map[string]Record, alive map[string]bool) map[string]float64 {
	var load map[string]float64
	for name, rec := range records {
		for _, id := range rec.Standbys {
			home := homeOf(id)
			if !alive[home] || home == name {
				continue
			}
			for _, c := range records[home].Cameras {
				if home+"/"+c.Name == id {
					if load == nil {
						load = map[string]float64{}
					}
					load[name] += c.BitrateMbps
				}
			}
		}
	}
	return load
}

// planInput is the planner's input with each server's bitrate capacity
// reduced by reserved (Mbps held by standby sessions). A limited capacity
// never becomes unlimited by it: the planner reads 0 as no limit.
func planInput(records map[string]Record, alive map[string]bool, reserved map[string]float64) failover.Input {
	var in failover.Input
	for _, name := range sortedKeys(records) {
		s := plannerServer(records[name], alive[name])
		if r := reserved[name]; r > 0 && s.Capacity.BitrateMbps > 0 {
			s.Capacity.BitrateMbps = max(s.Capacity.BitrateMbps-r, 1e-6)
		}
		in.Servers = append(in.Servers, s)
	}
	return in
}

// standbys decides the standby sessions this server holds after the plan
// of this step: the placement's sessions on it, except cameras it records
// (adopted, or still handed over), cameras it has no credentials for, and
// cameras their home does not record now (Record.Live). The last rule
// keeps the home's session first: a camera with a stream limit serves
// the home before any standby, and when the home loses the camera (a
// camera reboot, a refusal) the standby closes, so the home reconnects
// into a free slot; the standby comes back once the home records. A
// session this server already has waits StandbyYieldAfter for the home
// before it closes (a failback hands the camera back before the home's
// first keyframe); one that was recording goes on recording meanwhile.
func (st *State) standbys(prev State, self string, in Inputs) []Standby {
	st.Standby = map[string]Standby{}
	st.homeWait = map[string]time.Time{}
	// The placement runs the planner once per home asking for standby:
	// it is computed again only when what it reads changed (a record's
	// version, a verdict, this server's own record), not every step.
	view := viewOf(st.Records, st.Alive, self)
	st.placement = prev.placement
	if st.placement.out == nil || !st.placement.view.equal(view) {
		st.placement = placementCache{view: view.clone(), out: StandbyPlacement(st.Records, st.Alive)}
	}
	placement := st.placement.out
	for id, s := range placement {
		if s.Server != self || st.Recording[id] || !in.Credentials[id] {
			continue
		}
		if !slices.Contains(st.Records[s.Home].Live, id) {
			_, held := prev.Standby[id]
			if !held && !prev.Recording[id] {
				continue
			}
			since, ok := prev.homeWait[id]
			if !ok {
				since = in.Now
			}
			if in.Now.Sub(since) >= StandbyYieldAfter {
				continue
			}
			st.homeWait[id] = since
			if prev.Recording[id] || prev.Standby[id].Mode == StandbyMirror {
				// Handed back before the home records: a hot standby
				// goes on writing, as a mirror, until the home records,
				// so the failback leaves no hole either.
				s.Mode = StandbyMirror
			}
		}
		st.Standby[id] = s
	}
	return standbyList(st.Standby)
}

// placementCache is the last StandbyPlacement and the view it was
// computed from. Neither is modified once made.
type placementCache struct {
	view placementView
	out  map[string]Standby
}

// placementView is what StandbyPlacement reads, in a form cheap to
// compare every step. Of each record: its version (a peer's record
// changes only with a new version), the membership verdict and what the
// stale-record rule left of its claims, and its standby mode, in key.
// Of this server's own record, which carries no version: all the planner
// reads of it (plannerServer), compared field by field. It used to be
// formatted into the key with %v, cameras and all, four times a second:
// a tenth of a supervisor's CPU at 250 cameras.
type placementView struct {
	key  []byte
	self failover.Server
}

// viewOf is the placementView of records and alive for server self.
func viewOf(records map[string]Record, alive map[string]bool, self string) placementView {
	var v placementView
	for _, name := range sortedKeys(records) {
		r := records[name]
		v.key = append(v.key, name...)
		v.key = append(v.key, '/')
		v.key = strconv.AppendUint(v.key, r.Version, 10)
		v.key = append(v.key, '/')
		v.key = strconv.AppendBool(v.key, alive[name])
		v.key = append(v.key, '/')
		v.key = strconv.AppendInt(v.key, int64(len(r.Claims)), 10)
		v.key = append(v.key, '/')
		v.key = strconv.AppendBool(v.key, r.Stable)
		v.key = append(v.key, '/')
		v.key = append(v.key, r.Standby...)
		v.key = append(v.key, ';')
	}
	if r, ok := records[self]; ok {
		v.self = plannerServer(r, alive[self])
	}
	return v
}

func (v placementView) equal(o placementView) bool {
	return bytes.Equal(v.key, o.key) && v.self.Equal(o.self)
}

// clone is v with slices of its own, so that a record's slices changed
// in place later cannot change the cached view with them.
func (v placementView) clone() placementView {
	v.self.Buddies = slices.Clone(v.self.Buddies)
	v.self.Cameras = slices.Clone(v.self.Cameras)
	v.self.Recording = slices.Clone(v.self.Recording)
	return v
}

// live are the ids of the pipelines that record now, sorted (Pipelines
// come sorted from node; sorting again keeps Step independent of that).
func live(pipes []Pipeline) []string {
	var out []string
	for _, p := range pipes {
		if p.State == PipelineRecording {
			out = append(out, p.ID)
		}
	}
	slices.Sort(out)
	return out
}

func standbyList(m map[string]Standby) []Standby {
	out := make([]Standby, 0, len(m))
	for _, id := range sortedKeys(m) {
		out = append(out, m[id])
	}
	return out
}

// standby raises standby.unavailable for a standby session that is
// offline (refused, unreachable, its stream lost), once per outage, and
// standby.available when it works again or is no longer held (taken
// over, moved, the home gone). The camera's own recording is the home's
// business: its alarms come from the home.
func (r *raiser) standby() {
	status := map[string]Pipeline{}
	for _, p := range r.in.Standbys {
		status[p.ID] = p
	}
	next := map[string]bool{}
	for _, id := range sortedKeys(r.st.Standby) {
		s := r.st.Standby[id]
		p, ok := status[id]
		raised := r.prev.unavailable[id]
		switch {
		case ok && p.State == PipelineOffline:
			next[id] = true
			if !raised {
				r.event(Event{Type: TypeStandbyUnavailable, Severity: SeverityAlarm, Cameras: []string{id}, About: s.Home,
					Condition: ConditionStandby(id), Text: unavailableText(id, s, r.self, p)})
			}
		case raised && ok && p.State == PipelineRecording:
			r.event(Event{Type: TypeStandbyAvailable, Severity: SeverityInfo, Cameras: []string{id}, About: s.Home,
				Resolves: []string{ConditionStandby(id)},
				Text:     fmt.Sprintf("the %s standby session of %s for camera %s works again", s.Mode, r.self, id)})
		case raised:
			next[id] = true
		}
	}
	for _, id := range sortedKeys(r.prev.unavailable) {
		if _, held := r.st.Standby[id]; !held {
			r.event(Event{Type: TypeStandbyAvailable, Severity: SeverityInfo, Cameras: []string{id},
				Resolves: []string{ConditionStandby(id)},
				Text:     fmt.Sprintf("%s no longer holds a standby session for camera %s", r.self, id)})
		}
	}
	r.st.unavailable = next
}

// unavailableText says what became of the standby session self holds (or
// tries to open) for camera id, by its failure: the camera refused its
// credentials, the stream it had sent stopped, or the session could not
// be opened (a stream limit's 453 or 503, an unreachable camera). An
// alarm that said "refused" for a stream lost, or for a camera the buddy
// cannot reach, would send the technician to the wrong cause.
func unavailableText(id string, s Standby, self string, p Pipeline) string {
	var what string
	switch p.Failure {
	case FailureAuth:
		what = fmt.Sprintf("camera %s refused the credentials of the %s standby session of %s (%s)", id, s.Mode, self, p.Error)
	case FailureStalled:
		what = fmt.Sprintf("the %s standby session of %s for camera %s lost its stream (%s)", s.Mode, self, id, p.Error)
	default:
		what = fmt.Sprintf("%s could not open the %s standby session for camera %s (%s)", self, s.Mode, id, p.Error)
	}
	return what + fmt.Sprintf(": its failover is cold; %s's own recording is not affected", s.Home)
}

// StandbyIDs are the camera ids of sessions, in their order.
func StandbyIDs(sessions []Standby) []string {
	out := make([]string, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, s.Camera)
	}
	return slices.Clip(out)
}
