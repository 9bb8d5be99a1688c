package failover

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomSite builds a valid site (unique names, sane bitrates) with random
// liveness, policies, capacities, buddies and claims, including claims by
// dead servers, non-candidates and for unknown ids.
func randomSite(r *rand.Rand) []Server {
	n := 1 + r.IntN(7)
	pool := r.Perm(10)[:n]
	servers := make([]Server, n)
	var ids []string
	for i := range servers {
		s := &servers[i]
		s.Name = fmt.Sprintf("s%d", pool[i])
		s.Alive = r.IntN(10) < 7
		s.Stable = s.Alive && r.IntN(2) == 0
		s.Failback = r.IntN(2) == 0
		s.Draining = s.Alive && r.IntN(5) == 0
		switch r.IntN(4) {
		case 0:
			s.Mode = ModeCritical
		case 1:
			s.Mode = ModeAll
		}
		if r.IntN(3) > 0 {
			s.Capacity.Cameras = r.IntN(7)
		}
		if r.IntN(3) == 0 {
			s.Capacity.BitrateMbps = float64(r.IntN(40)) / 2
		}
		for range r.IntN(4) {
			switch r.IntN(6) {
			case 0:
				s.Buddies = append(s.Buddies, "unknown")
			default:
				s.Buddies = append(s.Buddies, fmt.Sprintf("s%d", pool[r.IntN(n)]))
			}
		}
		for c := range r.IntN(6) {
			cam := Camera{Name: fmt.Sprintf("c%d", c), Critical: r.IntN(5) < 2}
			if r.IntN(2) == 0 {
				cam.BitrateMbps = float64(r.IntN(20)) / 4
			}
			s.Cameras = append(s.Cameras, cam)
			ids = append(ids, CameraID(s.Name, cam.Name))
		}
	}
	ids = append(ids, "s0/none", "bogus")
	for i := range servers {
		for _, id := range ids {
			if r.IntN(4) == 0 {
				servers[i].Recording = append(servers[i].Recording, id)
			}
		}
	}
	return servers
}

// shuffled returns a deep copy of servers with Servers, Cameras and
// Recording in random order (Buddies keep their priority order).
func shuffled(r *rand.Rand, servers []Server) []Server {
	out := clone(servers)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for i := range out {
		c, rec := out[i].Cameras, out[i].Recording
		r.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		r.Shuffle(len(rec), func(i, j int) { rec[i], rec[j] = rec[j], rec[i] })
	}
	return out
}

// refCandidates is the documented candidate rule, written independently of
// the planner.
func refCandidates(byName map[string]*Server, home *Server, c Camera) []*Server {
	out := []*Server{home}
	if home.Mode == ModeCritical && !c.Critical {
		return out
	}
	for _, b := range home.Buddies {
		s, ok := byName[b]
		if ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

type load struct {
	cams, kbps         int
	critCams, critKbps int
}

func kbps(mbps float64) int { return int(math.Round(mbps * 1000)) }

func fitsAfter(s *Server, l load, c Camera) bool {
	if s.Capacity.Cameras > 0 && l.cams+1 > s.Capacity.Cameras {
		return false
	}
	return s.Capacity.BitrateMbps <= 0 || l.kbps+kbps(c.BitrateMbps) <= kbps(s.Capacity.BitrateMbps)
}

// checkInvariants asserts the guarantees listed in the package doc for a
// valid site.
func checkInvariants(t *testing.T, servers []Server, p Plan) {
	t.Helper()
	byName := map[string]*Server{}
	for i := range servers {
		byName[servers[i].Name] = &servers[i]
	}
	loads := map[string]load{}
	type camRef struct {
		home *Server
		cam  Camera
	}
	all := map[string]camRef{}
	for i := range servers {
		for _, c := range servers[i].Cameras {
			all[CameraID(servers[i].Name, c.Name)] = camRef{&servers[i], c}
		}
	}
	unplaced := map[string]Unplaced{}
	for _, u := range p.Unplaced {
		if _, dup := unplaced[u.Camera]; dup {
			t.Fatalf("%s unplaced twice", u.Camera)
		}
		unplaced[u.Camera] = u
	}
	for id, owner := range p.Owner {
		ref, ok := all[id]
		if !ok {
			t.Fatalf("owner for unknown camera %s", id)
		}
		if _, both := unplaced[id]; both {
			t.Fatalf("%s both owned and unplaced", id)
		}
		if p.Home[id] != ref.home.Name {
			t.Fatalf("Home[%s] = %q, want %q", id, p.Home[id], ref.home.Name)
		}
		s := byName[owner]
		if s == nil || !s.Alive {
			t.Fatalf("%s owned by dead or unknown server %q", id, owner)
		}
		if !slices.Contains(refCandidates(byName, ref.home, ref.cam), s) {
			t.Fatalf("%s owned by %s, not a candidate", id, owner)
		}
		l := loads[owner]
		l.cams++
		l.kbps += kbps(ref.cam.BitrateMbps)
		if ref.cam.Critical {
			l.critCams++
			l.critKbps += kbps(ref.cam.BitrateMbps)
		}
		loads[owner] = l
	}
	for name, l := range loads {
		c := byName[name].Capacity
		if c.Cameras > 0 && l.cams > c.Cameras {
			t.Fatalf("%s records %d cameras, capacity %d", name, l.cams, c.Cameras)
		}
		if c.BitrateMbps > 0 && l.kbps > kbps(c.BitrateMbps) {
			t.Fatalf("%s records %d kbit/s, capacity %v Mbit/s", name, l.kbps, c.BitrateMbps)
		}
	}
	for id, owner := range p.Owner {
		if !byName[owner].Draining {
			continue
		}
		ref := all[id]
		for _, s := range refCandidates(byName, ref.home, ref.cam) {
			if s.Alive && !s.Draining && fitsAfter(s, loads[s.Name], ref.cam) {
				t.Fatalf("%s kept by draining %s while candidate %s has room", id, owner, s.Name)
			}
		}
	}
	for id, ref := range all {
		_, owned := p.Owner[id]
		u, isUnplaced := unplaced[id]
		if !owned && !isUnplaced {
			t.Fatalf("%s neither owned nor unplaced", id)
		}
		if !isUnplaced {
			continue
		}
		if u.Home != ref.home.Name {
			t.Fatalf("unplaced %s has home %q", id, u.Home)
		}
		anyAlive := false
		for _, s := range refCandidates(byName, ref.home, ref.cam) {
			if !s.Alive {
				continue
			}
			anyAlive = true
			if fitsAfter(s, loads[s.Name], ref.cam) {
				t.Fatalf("%s unplaced (%s) but candidate %s has room", id, u.Reason, s.Name)
			}
			if ref.cam.Critical {
				crit := load{cams: loads[s.Name].critCams, kbps: loads[s.Name].critKbps}
				if fitsAfter(s, crit, ref.cam) {
					t.Fatalf("critical %s unplaced while non-critical cameras hold room on %s", id, s.Name)
				}
			}
		}
		want := ReasonCapacity
		if !anyAlive {
			want = ReasonNoCandidateAlive
		}
		if u.Reason != want {
			t.Fatalf("%s unplaced with reason %q, want %q", id, u.Reason, want)
		}
	}
	for id := range unplaced {
		if _, ok := all[id]; !ok {
			t.Fatalf("unplaced unknown camera %s", id)
		}
	}
}

func TestPropertiesRandomSites(t *testing.T) {
	const iterations = 3000
	for seed := range uint64(iterations) {
		r := rand.New(rand.NewPCG(seed, 42))
		site := randomSite(r)
		p := Compute(Input{Servers: site})
		checkInvariants(t, site, p)
		if t.Failed() {
			return
		}

		for range 3 {
			q := Compute(Input{Servers: shuffled(r, site)})
			if !q.Equal(p) {
				t.Fatalf("seed %d: plan depends on input order:\n%+v\n%+v", seed, p, q)
			}
		}

		// Fixed point: apply the plan as claims, same servers.
		applied := clone(site)
		for i := range applied {
			applied[i].Recording = p.For(applied[i].Name)
		}
		q := Compute(Input{Servers: applied})
		if !q.Equal(p) {
			t.Fatalf("seed %d: plan is not a fixed point:\nfirst  %v %v\nsecond %v %v\nsite %+v",
				seed, p.Owner, p.Unplaced, q.Owner, q.Unplaced, site)
		}
		checkInvariants(t, applied, q)
	}
}

// TestPropertyNoThrashOnRecovery checks that a server coming back alive but
// not yet stable never takes cameras from a live buddy that holds them, and
// that a dead home's cameras stay with their live claimant when a
// higher-priority buddy returns.
func TestPropertyNoThrashOnRecovery(t *testing.T) {
	for seed := range uint64(1000) {
		r := rand.New(rand.NewPCG(seed, 7))
		site := randomSite(r)
		p := Compute(Input{Servers: site})
		applied := clone(site)
		for i := range applied {
			applied[i].Recording = p.For(applied[i].Name)
		}
		// Bring every dead server back, alive but not stable.
		for i := range applied {
			if !applied[i].Alive {
				applied[i].Alive, applied[i].Stable = true, false
			}
		}
		q := Compute(Input{Servers: applied})
		checkInvariants(t, applied, q)
		draining := map[string]bool{}
		for _, s := range site {
			draining[s.Name] = s.Draining
		}
		for id, owner := range p.Owner {
			// A draining server keeps a camera only until another
			// candidate can take it: that move is the point of a drain.
			if q.Owner[id] != owner && !draining[owner] {
				t.Fatalf("seed %d: %s moved from %s to %s when servers came back unstable", seed, id, owner, q.Owner[id])
			}
		}
	}
}
