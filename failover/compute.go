package failover

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// maxMbps bounds bitrates the planner accepts: cameras above it are invalid,
// capacities above it are unlimited. It keeps kbit/s sums far from int64
// overflow (a limited server never holds more than its limit).
const maxMbps = 1e9

// server is the planner's working copy of one valid Server.
type server struct {
	in       *Server
	alive    bool
	draining bool    // in maintenance: a candidate of last resort only
	returns  bool    // Alive && Stable && Failback && !Draining: takes its cameras back
	critOnly bool    // Mode "critical"
	maxCams  int     // 0: unlimited
	maxKbps  int64   // <0: unlimited
	cands    []int32 // candidate servers of its cameras, itself first
	cams     int     // load: cameras
	kbps     int64   // load: kbit/s
	waiting  []int32 // cameras that want to return here but found no room
	queued   bool    // in the return queue
}

func (s *server) fits(c *camera) bool {
	if s.maxCams > 0 && s.cams >= s.maxCams {
		return false
	}
	return s.maxKbps < 0 || s.kbps+c.kbps <= s.maxKbps
}

// camera is the planner's working copy of one Camera.
type camera struct {
	id        string
	name      string
	homeName  string
	home      int32 // index in planner.srv; -1 for cameras of invalid servers
	critical  bool
	invalid   bool
	kbps      int64
	claim     int32 // best live candidate claiming it; -1 none
	claimRank int   // claim's position in the candidate list
	owner     int32 // -1 unplaced
}

type planner struct {
	srv      []server
	cams     []camera
	ids      map[string]int32
	bad      []int // input indices of servers whose name is not unique
	unplaced []Unplaced
	queue    []int32
}

// Compute returns the plan for the site view in. It is pure and
// deterministic; see the package documentation for the rules.
func Compute(in Input) Plan {
	var p planner
	p.servers(in.Servers)
	p.cameras(in.Servers)
	p.claims()
	p.round(true)
	p.round(false)
	return p.result()
}

// servers builds p.srv in name order, leaving out servers whose name is
// not unique; their cameras are collected as invalid by cameras.
func (p *planner) servers(in []Server) {
	order := make([]int, len(in))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(in[a].Name, in[b].Name) })

	p.srv = make([]server, 0, len(in))
	index := make(map[string]int32, len(in))
	nbuddies := 0
	for k, i := range order {
		s := &in[i]
		if (k > 0 && in[order[k-1]].Name == s.Name) || (k+1 < len(order) && in[order[k+1]].Name == s.Name) {
			p.bad = append(p.bad, i)
			continue
		}
		index[s.Name] = int32(len(p.srv))
		p.srv = append(p.srv, server{
			in:       s,
			alive:    s.Alive,
			draining: s.Alive && s.Draining,
			returns:  s.Alive && s.Stable && s.Failback && !s.Draining,
			critOnly: s.Mode == ModeCritical,
			maxCams:  max(s.Capacity.Cameras, 0),
			maxKbps:  capacityKbps(s.Capacity.BitrateMbps),
		})
		nbuddies += 1 + len(s.Buddies)
	}

	// Candidate lists share one backing array; seen marks servers already
	// in the list being built.
	backing := make([]int32, 0, nbuddies)
	seen := make([]int32, len(p.srv))
	for i := range p.srv {
		s := &p.srv[i]
		start := len(backing)
		mark := int32(i + 1)
		backing = append(backing, int32(i))
		seen[i] = mark
		for _, name := range s.in.Buddies {
			j, ok := index[name]
			if !ok || seen[j] == mark {
				continue
			}
			seen[j] = mark
			backing = append(backing, j)
		}
		s.cands = backing[start:len(backing):len(backing)]
	}
}

// cameras builds p.cams: valid servers' cameras in (home, name) order, then
// cameras of invalid servers (already marked invalid). It also builds the id
// index and marks colliding ids invalid.
func (p *planner) cameras(in []Server) {
	total, idlen := 0, 0
	for i := range in {
		for _, c := range in[i].Cameras {
			total++
			idlen += len(in[i].Name) + 1 + len(c.Name)
		}
	}
	p.cams = make([]camera, 0, total)
	add := func(s *Server, home int32) {
		start := len(p.cams)
		for _, c := range s.Cameras {
			p.cams = append(p.cams, camera{
				name:     c.Name,
				homeName: s.Name,
				home:     home,
				critical: c.Critical,
				invalid:  home < 0 || !validBitrate(c.BitrateMbps),
				kbps:     bitrateKbps(c.BitrateMbps),
				claim:    -1,
				owner:    -1,
			})
		}
		slices.SortFunc(p.cams[start:], func(a, b camera) int { return strings.Compare(a.name, b.name) })
	}
	for i := range p.srv {
		add(p.srv[i].in, int32(i))
	}
	for _, i := range p.bad {
		add(&in[i], -1)
	}

	// All ids live in one string; each id is a substring of it.
	var b strings.Builder
	b.Grow(idlen)
	for i := range p.cams {
		b.WriteString(p.cams[i].homeName)
		b.WriteByte('/')
		b.WriteString(p.cams[i].name)
	}
	all := b.String()
	off := 0
	p.ids = make(map[string]int32, len(p.cams))
	for i := range p.cams {
		c := &p.cams[i]
		n := len(c.homeName) + 1 + len(c.name)
		c.id = all[off : off+n]
		off += n
		if j, dup := p.ids[c.id]; dup {
			p.cams[j].invalid = true
			c.invalid = true
			continue
		}
		p.ids[c.id] = int32(i)
	}
}

// candidates returns c's candidate servers in priority order.
func (p *planner) candidates(c *camera) []int32 {
	h := &p.srv[c.home]
	if h.critOnly && !c.critical {
		return h.cands[:1]
	}
	return h.cands
}

// claims records, for each camera, its highest-priority live claimant.
func (p *planner) claims() {
	for si := range p.srv {
		s := &p.srv[si]
		if !s.alive {
			continue
		}
		for _, id := range s.in.Recording {
			ci, ok := p.ids[id]
			if !ok {
				continue
			}
			c := &p.cams[ci]
			if c.invalid {
				continue
			}
			rank := slices.Index(p.candidates(c), int32(si))
			if rank < 0 {
				continue
			}
			if c.claim < 0 || rank < c.claimRank {
				c.claim, c.claimRank = int32(si), rank
			}
		}
	}
}

func (p *planner) assign(c *camera, si int32) {
	s := &p.srv[si]
	s.cams++
	s.kbps += c.kbps
	c.owner = si
}

func (p *planner) release(c *camera) {
	s := &p.srv[c.owner]
	s.cams--
	s.kbps -= c.kbps
	c.owner = -1
}

// round places the cameras of one criticality: keep, return, place.
func (p *planner) round(critical bool) {
	var pending, returning []int32
	for i := range p.cams {
		c := &p.cams[i]
		if c.invalid || c.critical != critical {
			continue
		}
		if c.claim >= 0 && !p.srv[c.claim].draining && p.srv[c.claim].fits(c) {
			p.assign(c, c.claim)
			if c.claim != c.home && p.srv[c.home].returns {
				returning = append(returning, int32(i))
			}
			continue
		}
		pending = append(pending, int32(i))
	}

	// Return: try each in order; a camera that finds no room waits on its
	// home and is retried whenever a return frees room there.
	p.queue = p.queue[:0]
	for _, ci := range returning {
		if !p.tryReturn(ci) {
			h := &p.srv[p.cams[ci].home]
			h.waiting = append(h.waiting, ci)
		}
	}
	for head := 0; head < len(p.queue); head++ {
		s := &p.srv[p.queue[head]]
		s.queued = false
		kept := s.waiting[:0]
		for _, ci := range s.waiting {
			if !p.tryReturn(ci) {
				kept = append(kept, ci)
			}
		}
		s.waiting = kept
	}
	for _, ci := range returning {
		p.srv[p.cams[ci].home].waiting = nil
	}

	// Place: first live candidate with room. Cameras whose home is alive
	// go first, so a server's own cameras are never pushed out by cameras
	// it would adopt.
	homeAlive := func(ci int32) bool { return p.srv[p.cams[ci].home].alive }
	for _, ci := range pending {
		if homeAlive(ci) {
			p.place(ci)
		}
	}
	for _, ci := range pending {
		if !homeAlive(ci) {
			p.place(ci)
		}
	}
}

// place gives camera ci to its first live candidate with room, or records
// why it is unplaced. Draining candidates come last: the one that claims
// the camera (it records it now, so it keeps it), then the others in
// priority order.
func (p *planner) place(ci int32) {
	c := &p.cams[ci]
	alive := false
	for _, si := range p.candidates(c) {
		s := &p.srv[si]
		if !s.alive {
			continue
		}
		alive = true
		if !s.draining && s.fits(c) {
			p.assign(c, si)
			return
		}
	}
	if c.claim >= 0 && p.srv[c.claim].draining && p.srv[c.claim].fits(c) {
		p.assign(c, c.claim)
		return
	}
	for _, si := range p.candidates(c) {
		if s := &p.srv[si]; s.draining && s.fits(c) {
			p.assign(c, si)
			return
		}
	}
	reason := ReasonCapacity
	if !alive {
		reason = ReasonNoCandidateAlive
	}
	p.unplaced = append(p.unplaced, Unplaced{Camera: c.id, Home: c.homeName, Reason: reason})
}

// tryReturn moves camera ci from its buddy to its home if the home has
// room, and queues the buddy so cameras waiting on it are retried.
func (p *planner) tryReturn(ci int32) bool {
	c := &p.cams[ci]
	h := &p.srv[c.home]
	if !h.fits(c) {
		return false
	}
	from := c.owner
	p.release(c)
	p.assign(c, c.home)
	if k := &p.srv[from]; !k.queued {
		k.queued = true
		p.queue = append(p.queue, from)
	}
	return true
}

func (p *planner) result() Plan {
	placed := 0
	for i := range p.cams {
		c := &p.cams[i]
		if c.invalid {
			p.unplaced = append(p.unplaced, Unplaced{Camera: c.id, Home: c.homeName, Reason: ReasonInvalid})
		} else if c.owner >= 0 {
			placed++
		}
	}
	plan := Plan{
		Owner: make(map[string]string, placed),
		Home:  make(map[string]string, placed),
	}
	for i := range p.cams {
		c := &p.cams[i]
		if c.owner >= 0 {
			plan.Owner[c.id] = p.srv[c.owner].in.Name
			plan.Home[c.id] = c.homeName
		}
	}
	slices.SortFunc(p.unplaced, func(a, b Unplaced) int {
		return cmp.Or(strings.Compare(a.Camera, b.Camera), strings.Compare(a.Home, b.Home),
			strings.Compare(a.Reason, b.Reason))
	})
	plan.Unplaced = slices.Compact(p.unplaced)
	return plan
}

func validBitrate(mbps float64) bool {
	return mbps >= 0 && mbps <= maxMbps // false for NaN
}

// bitrateKbps converts a valid camera bitrate to whole kbit/s.
func bitrateKbps(mbps float64) int64 {
	if !validBitrate(mbps) {
		return 0
	}
	return int64(math.Round(mbps * 1000))
}

// capacityKbps converts a capacity limit to whole kbit/s; -1 is unlimited.
func capacityKbps(mbps float64) int64 {
	if !(mbps > 0 && mbps <= maxMbps) {
		return -1
	}
	return int64(math.Round(mbps * 1000))
}
