package failover

import (
	"fmt"
	"testing"
)

// bigSite is 100 servers × 100 cameras (30 % critical, 2–8 Mbit/s), each
// server naming the next two as buddies, capacity 150 cameras / 900 Mbit/s.
// Every tenth server is dead, and each server reports recording its own
// cameras: the moment right after ten servers fail.
func bigSite() []Server {
	const nServers, nCams = 100, 100
	servers := make([]Server, nServers)
	for i := range servers {
		s := &servers[i]
		s.Name = fmt.Sprintf("rec-%03d", i)
		s.Alive = i%10 != 3
		s.Stable = s.Alive
		s.Failback = true
		s.Capacity = Capacity{Cameras: 150, BitrateMbps: 900}
		s.Buddies = []string{fmt.Sprintf("rec-%03d", (i+1)%nServers), fmt.Sprintf("rec-%03d", (i+2)%nServers)}
		s.Cameras = make([]Camera, nCams)
		s.Recording = make([]string, nCams)
		for c := range s.Cameras {
			s.Cameras[c] = Camera{Name: fmt.Sprintf("cam-%03d", c), Critical: c%10 < 3, BitrateMbps: float64(2 + c%7)}
			s.Recording[c] = CameraID(s.Name, s.Cameras[c].Name)
		}
	}
	return servers
}

func BenchmarkPlan100x100(b *testing.B) {
	in := Input{Servers: bigSite()}
	p := Compute(in)
	if len(p.Owner)+len(p.Unplaced) != 10000 {
		b.Fatalf("planned %d + %d cameras, want 10000", len(p.Owner), len(p.Unplaced))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Compute(in)
	}
}

// BenchmarkPlan100x100Steady replans a site whose claims already match the
// plan, as every server does on each membership tick.
func BenchmarkPlan100x100Steady(b *testing.B) {
	site := bigSite()
	p := Compute(Input{Servers: site})
	for i := range site {
		site[i].Recording = p.For(site[i].Name)
	}
	in := Input{Servers: site}
	if q := Compute(in); !q.Equal(p) {
		b.Fatal("steady site replanned differently")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Compute(in)
	}
}
