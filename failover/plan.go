package failover

import (
	"maps"
	"slices"

	cameraid "github.com/buddyrec/buddyrec/camera"
)

// Mode values for Server.Mode: which of a server's cameras its buddies may
// take over.
const (
	// ModeAll lets every camera fail over (mirrored, spread servers, N+k).
	ModeAll = "all"
	// ModeCritical lets only critical cameras fail over (spread cameras), so
	// that a buddy with little spare capacity carries what matters most.
	ModeCritical = "critical"
)

// Reasons reported in Unplaced.Reason, so the caller can raise the matching
// alarm.
const (
	// ReasonNoCandidateAlive: neither the home nor any buddy that may take
	// the camera is alive.
	ReasonNoCandidateAlive = "no_candidate_alive"
	// ReasonCapacity: some candidate is alive but none has room.
	ReasonCapacity = "capacity"
	// ReasonInvalid: the site view is inconsistent for this camera (duplicate
	// server name or camera id, or a nonsense bitrate); config checking
	// should have caught it.
	ReasonInvalid = "invalid"
)

// Camera is one camera as its home server's inventory describes it.
type Camera struct {
	// Name is unique within the home server; the site-wide id is
	// CameraID(home, Name).
	Name string
	// Critical cameras are placed before all others when capacity is short,
	// and are the only ones that fail over when the home's Mode is
	// "critical".
	Critical bool
	// BitrateMbps is what recording the camera costs against a server's
	// Capacity.BitrateMbps.
	BitrateMbps float64
}

// Capacity bounds what a server records, own and adopted cameras together.
// A zero (or negative) field means no limit on that dimension.
type Capacity struct {
	Cameras     int
	BitrateMbps float64
}

// Server is one recording server as the caller's membership view sees it.
type Server struct {
	// Name is unique in the site; it is also the gossip node name.
	Name string
	// Alive is the caller's membership verdict; dead servers never own.
	Alive bool
	// Stable means alive and healthy for at least failback_after; only a
	// Stable home takes its cameras back from a buddy.
	Stable bool
	// Capacity bounds own + adopted recording.
	Capacity Capacity
	// Buddies take over this server's cameras, in priority order (N+1,
	// N+2 ...).
	Buddies []string
	// Mode is ModeAll or ModeCritical; "" and unknown values mean ModeAll.
	Mode string
	// Failback sends cameras home once the home is Stable; false keeps them
	// with the buddy that holds them (sticky).
	Failback bool
	// Cameras are this server's own cameras.
	Cameras []Camera
	// Recording lists the camera ids this server says it records now (its
	// claims, as gossiped). They keep cameras where they are, which stops
	// thrashing; feed back Plan.For(Name) once the plan is applied.
	Recording []string
	// Draining marks a server in maintenance: alive, but its cameras (own
	// and adopted) go to other candidates, it takes none, and it keeps
	// only what no other candidate has room for.
	Draining bool
}

// Equal reports whether s and o are the same server to the planner: a
// caller that caches a plan compares its inputs with it.
func (s Server) Equal(o Server) bool {
	return s.Name == o.Name && s.Alive == o.Alive && s.Stable == o.Stable &&
		s.Capacity == o.Capacity && slices.Equal(s.Buddies, o.Buddies) &&
		s.Mode == o.Mode && s.Failback == o.Failback && slices.Equal(s.Cameras, o.Cameras) &&
		slices.Equal(s.Recording, o.Recording) && s.Draining == o.Draining
}

// Input is the site view the planner works from.
type Input struct {
	Servers []Server
}

// Plan says which server records which camera.
type Plan struct {
	// Owner maps camera id to the server that records it.
	Owner map[string]string `json:"owner"`
	// Home maps every camera id in Owner to its home server, so adoptions
	// can be reported without parsing ids.
	Home map[string]string `json:"home"`
	// Unplaced lists cameras nobody records, sorted by (Camera, Home).
	Unplaced []Unplaced `json:"unplaced,omitempty"`
}

// Unplaced is a camera the plan could not give to any server; the caller
// raises an alarm for it.
type Unplaced struct {
	Camera string `json:"camera"`
	Home   string `json:"home"`
	Reason string `json:"reason"`
}

// CameraID returns the site-wide id of camera name on server home, in the
// string form the plan is keyed by (see camera.ID).
func CameraID(home, name string) string { return cameraid.New(home, name).String() }

// For returns the ids of the cameras server records, sorted.
func (p Plan) For(server string) []string {
	var ids []string
	for id, owner := range p.Owner {
		if owner == server {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// AdoptedBy returns, per home server, the sorted ids of the cameras server
// records on behalf of that home: what a webhook reports as taken over.
func (p Plan) AdoptedBy(server string) map[string][]string {
	out := make(map[string][]string)
	for id, owner := range p.Owner {
		if owner != server {
			continue
		}
		if home := p.Home[id]; home != server {
			out[home] = append(out[home], id)
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

// Equal reports whether p and q assign and leave out the same cameras, so a
// caller can skip work when a recomputed plan did not change.
func (p Plan) Equal(q Plan) bool {
	return maps.Equal(p.Owner, q.Owner) && maps.Equal(p.Home, q.Home) &&
		slices.Equal(p.Unplaced, q.Unplaced)
}

// Diff tells server self what to do when moving from plan prev to plan
// next: the cameras it must start and those it must stop recording, each
// sorted.
func Diff(prev, next Plan, self string) (start, stop []string) {
	for id, owner := range next.Owner {
		if owner == self && prev.Owner[id] != self {
			start = append(start, id)
		}
	}
	for id, owner := range prev.Owner {
		if owner == self && next.Owner[id] != self {
			stop = append(stop, id)
		}
	}
	slices.Sort(start)
	slices.Sort(stop)
	return start, stop
}
