package failover

import (
	"math"
	"slices"
	"testing"
)

// byteReader hands out fuzz bytes; it yields zeros once data runs out.
type byteReader struct{ data []byte }

func (b *byteReader) next() byte {
	if len(b.data) == 0 {
		return 0
	}
	v := b.data[0]
	b.data = b.data[1:]
	return v
}

// fuzzNames include duplicates-in-waiting, the empty name and names with
// "/" so that ids collide.
var fuzzNames = []string{"a", "b", "c", "a/b", "", "b/c", "d", "a/"}

var fuzzFloats = []float64{0, 1, 2.5, 0.1, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, 1e9, 3e-4, 4}

// siteFromBytes decodes arbitrary bytes into a site that may break every
// rule: duplicate names, colliding ids, nonsense numbers, odd claims.
func siteFromBytes(data []byte) []Server {
	r := &byteReader{data}
	n := int(r.next() % 6)
	servers := make([]Server, n)
	for i := range servers {
		s := &servers[i]
		s.Name = fuzzNames[int(r.next())%len(fuzzNames)]
		flags := r.next()
		s.Alive, s.Stable, s.Failback = flags&1 != 0, flags&2 != 0, flags&4 != 0
		s.Mode = []string{"", ModeAll, ModeCritical, "bogus"}[flags>>3&3]
		s.Capacity.Cameras = int(int8(r.next()))
		s.Capacity.BitrateMbps = fuzzFloats[int(r.next())%len(fuzzFloats)]
		for range r.next() % 4 {
			s.Buddies = append(s.Buddies, fuzzNames[int(r.next())%len(fuzzNames)])
		}
		for range r.next() % 5 {
			c := r.next()
			s.Cameras = append(s.Cameras, Camera{
				Name:        fuzzNames[int(c)%len(fuzzNames)],
				Critical:    c&0x80 != 0,
				BitrateMbps: fuzzFloats[int(r.next())%len(fuzzFloats)],
			})
		}
		for range r.next() % 4 {
			s.Recording = append(s.Recording,
				fuzzNames[int(r.next())%len(fuzzNames)]+"/"+fuzzNames[int(r.next())%len(fuzzNames)])
		}
	}
	return servers
}

func FuzzCompute(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 7, 2, 1, 1, 1, 2, 0, 0, 1, 1, 2, 0, 0, 2, 1, 1, 1, 1, 3, 2, 2, 0})
	f.Add([]byte{5, 0, 1, 0, 5, 0, 2, 3, 5, 1, 0, 0, 1, 3, 1, 0xff, 4, 1, 0, 2})
	f.Add([]byte{4, 3, 0x13, 0x80, 6, 3, 0, 1, 2, 4, 0x81, 7, 3, 6, 0x83, 8, 1, 0, 1})
	f.Add([]byte{2, 0, 0xff, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		site := siteFromBytes(data)
		p := Compute(Input{Servers: site})

		alive := map[string]int{} // name -> alive entries
		count := map[string]int{}
		for _, s := range site {
			count[s.Name]++
			if s.Alive {
				alive[s.Name]++
			}
		}
		for id, owner := range p.Owner {
			if count[owner] != 1 || alive[owner] != 1 {
				t.Fatalf("%s owned by %q, not a unique alive server", id, owner)
			}
			if _, ok := p.Home[id]; !ok {
				t.Fatalf("%s has no home", id)
			}
		}
		for _, u := range p.Unplaced {
			if _, ok := p.Owner[u.Camera]; ok {
				t.Fatalf("%s both owned and unplaced (%s)", u.Camera, u.Reason)
			}
		}
		rev := clone(site)
		slices.Reverse(rev)
		if q := Compute(Input{Servers: rev}); !q.Equal(p) {
			t.Fatalf("plan depends on server order:\n%+v\n%+v", p, q)
		}
	})
}
