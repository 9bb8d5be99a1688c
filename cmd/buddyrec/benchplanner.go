package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/failover"
)

// simBody is what a simulated server gossips: the planner's half of the
// real record (node's recordBody), with the same field names and camera
// ids, so that records have the real size and, above 1 KiB, travel over
// TCP to every member as a real server's do. There is no media, so what
// it records is what it claims.
type simBody struct {
	Name      string      `json:"name"`
	Capacity  simCapacity `json:"capacity"`
	Buddies   []string    `json:"buddies"`
	Mode      string      `json:"mode"`
	Failback  bool        `json:"failback"`
	Cameras   []simCamera `json:"cameras"`
	Claims    []string    `json:"claims,omitempty"`
	Recording []string    `json:"recording,omitempty"`
	Stable    bool        `json:"stable"`
}

type simCapacity struct {
	Cameras int `json:"cameras"`
}

type simCamera struct {
	Name        string  `json:"name"`
	Critical    bool    `json:"critical,omitempty"`
	BitrateMbps float64 `json:"bitrate_mbps"`
}

type cachedRecord struct {
	version uint64
	server  failover.Server
}

// simServer is one planning server: a real buddy.Cluster on loopback and
// the real planner, re-planning whenever its view changes.
type simServer struct {
	name string
	c    *buddy.Cluster
	body simBody

	cache map[string]cachedRecord // decoded records by server, reused while the version holds

	mu       sync.Mutex
	planHash uint64
	plan     failover.Plan
	claims   []string // as last published in its record
}

func (s *simServer) replan() {
	view := s.c.View()
	alive := map[string]bool{}
	for _, m := range view.Members {
		if m.State == buddy.StateAlive || m.State == buddy.StateSuspect {
			alive[m.Name] = true
		}
	}
	names := make([]string, 0, len(view.Records))
	for n := range view.Records {
		names = append(names, n)
	}
	sort.Strings(names)
	var in failover.Input
	if s.cache == nil {
		s.cache = map[string]cachedRecord{}
	}
	for _, n := range names {
		rec := view.Records[n]
		cr, ok := s.cache[n]
		if !ok || cr.version != rec.Version {
			var b simBody
			if err := json.Unmarshal(rec.Body, &b); err != nil {
				continue
			}
			cr = cachedRecord{version: rec.Version, server: failover.Server{Name: n, Buddies: b.Buddies, Failback: b.Failback,
				Capacity: failover.Capacity{Cameras: b.Capacity.Cameras}, Recording: b.Claims}}
			for _, c := range b.Cameras {
				cr.server.Cameras = append(cr.server.Cameras, failover.Camera{Name: c.Name, Critical: c.Critical, BitrateMbps: c.BitrateMbps})
			}
			s.cache[n] = cr
		}
		srv := cr.server
		srv.Alive, srv.Stable = alive[n], alive[n]
		in.Servers = append(in.Servers, srv)
	}
	plan := failover.Compute(in)
	// The plan's fingerprint sums a hash of each assignment, so it needs
	// no sort: the simulation's own cost must stay small beside gossip.
	var sum uint64
	h := fnv.New64a()
	for id, owner := range plan.Owner {
		h.Reset()
		h.Write([]byte(id))
		h.Write([]byte{0})
		h.Write([]byte(owner))
		sum += h.Sum64()
	}
	s.mu.Lock()
	s.plan, s.planHash = plan, sum
	s.mu.Unlock()
	body := s.body
	body.Claims = plan.For(s.name)
	body.Recording = body.Claims
	s.mu.Lock()
	s.claims = body.Claims
	s.mu.Unlock()
	b, _ := json.Marshal(body)
	s.c.SetRecord(buddy.Record{Body: b})
}

func (s *simServer) loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	dirty := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.c.Changed():
			dirty = true
		case <-t.C:
			if dirty {
				dirty = false
				s.replan()
			}
		}
	}
}

func benchPlanner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench planner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nServers := fs.Int("servers", 100, "simulated servers, each a real gossip member on loopback")
	perServer := fs.Int("cameras", 100, "cameras per server")
	kill := fs.Int("kill", 10, "servers crashed at once")
	verbose := fs.Bool("v", false, "print progress while waiting")
	keepalive := fs.Duration("keepalive", buddy.DefaultKeepalive, "gossip keepalive ([cluster] keepalive)")
	failoverAfter := fs.Duration("failover-after", buddy.DefaultFailoverAfter, "gossip failover_after ([cluster] failover_after)")
	// A real server re-plans every 250 ms on its own CPU; here every
	// simulated server shares this machine's cores, so each re-plans at
	// most once a second, which can only lengthen the figure.
	every := fs.Duration("replan", time.Second, "how often each simulated server re-plans at most")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile from the crash to the end to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fmt.Fprintf(stdout, "starting %d servers with %d cameras each (%d cameras) on loopback ...\n", *nServers, *perServer, *nServers**perServer)
	servers := make([]*simServer, *nServers)
	var seeds []string
	for i := range servers {
		name := fmt.Sprintf("s%03d", i)
		body := simBody{
			Name:     name,
			Capacity: simCapacity{Cameras: *perServer * 3 / 2},
			Buddies:  []string{fmt.Sprintf("s%03d", (i+1)%*nServers), fmt.Sprintf("s%03d", (i+2)%*nServers)},
			Mode:     "all",
			Failback: true,
			Stable:   true,
		}
		for j := 1; j <= *perServer; j++ {
			body.Cameras = append(body.Cameras, simCamera{Name: fmt.Sprintf("cam-%03d", j), Critical: j <= *perServer/4, BitrateMbps: 4})
		}
		// A site that has been running: each server records its own
		// cameras, so its first plan changes nothing and the start is
		// not one storm of 100 records changing at once.
		initial := body
		for _, c := range body.Cameras {
			initial.Claims = append(initial.Claims, camera.New(name, c.Name).String())
		}
		initial.Recording = initial.Claims
		c, err := buddy.Start(ctx, buddy.Options{Name: name, BindAddr: "127.0.0.1:0", Join: seeds, Insecure: true, Keepalive: *keepalive, FailoverAfter: *failoverAfter})
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		defer c.Close()
		if len(seeds) < 3 {
			seeds = append(seeds, c.Addr())
		}
		servers[i] = &simServer{name: name, c: c, body: body, claims: initial.Claims}
		b, _ := json.Marshal(initial)
		c.SetRecord(buddy.Record{Body: b})
	}
	for _, s := range servers {
		go s.loop(ctx, *every)
	}

	agreed := func(live []*simServer, dead map[string]bool) (bool, int) {
		var h uint64
		for i, s := range live {
			s.mu.Lock()
			ph, plan := s.planHash, s.plan
			s.mu.Unlock()
			if i == 0 {
				h = ph
			} else if ph != h {
				return false, 0
			}
			if len(plan.Owner) == 0 {
				return false, 0
			}
			for _, owner := range plan.Owner {
				if dead[owner] {
					return false, 0
				}
			}
		}
		// Double ownership: a camera claimed by two live servers.
		owners := map[string]string{}
		double := 0
		for _, s := range live {
			s.mu.Lock()
			claims := s.claims
			s.mu.Unlock()
			for _, id := range claims {
				if _, dup := owners[id]; dup {
					double++
				}
				owners[id] = s.name
			}
		}
		return true, double
	}
	wait := func(live []*simServer, dead map[string]bool, timeout time.Duration) (time.Duration, int, error) {
		start := time.Now()
		lastReport := start
		for {
			if ok, double := agreed(live, dead); ok && double == 0 {
				return time.Since(start), double, nil
			}
			if *verbose && time.Since(lastReport) > 5*time.Second {
				lastReport = time.Now()
				hashes := map[uint64]int{}
				minAlive, maxRecords, minRecords, staleRecs := 1<<30, 0, 1<<30, 0
				own := map[string]uint64{}
				for _, s := range live {
					own[s.name] = s.c.View().Records[s.name].Version
				}
				for _, s := range live {
					s.mu.Lock()
					hashes[s.planHash]++
					s.mu.Unlock()
					v := s.c.View()
					a := 0
					for _, m := range v.Members {
						if m.State == buddy.StateAlive {
							a++
						}
					}
					minAlive = min(minAlive, a)
					maxRecords = max(maxRecords, len(v.Records))
					minRecords = min(minRecords, len(v.Records))
					for n, r := range v.Records {
						if ov, ok := own[n]; ok && r.Version != ov {
							staleRecs++
						}
					}
				}
				fmt.Fprintf(stdout, "  %.0fs: %d distinct plans, fewest alive members seen %d, records %d..%d, stale copies %d\n", time.Since(start).Seconds(), len(hashes), minAlive, minRecords, maxRecords, staleRecs)
			}
			if time.Since(start) > timeout {
				_, double := agreed(live, dead)
				return 0, double, fmt.Errorf("plans did not agree within %s", timeout)
			}
			select {
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	took, _, err := wait(servers, nil, 120*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "all %d plans agree %.1fs after the last server started; each server's record is %d bytes of JSON\n", *nServers, took.Seconds(), len(servers[0].c.View().Records[servers[0].name].Body))

	// Start from a quiet cluster, where every member sees every other
	// alive, so that detection is measured from the crash alone.
	quietBy := time.Now().Add(60 * time.Second)
	for quiet := false; !quiet; {
		if time.Now().After(quietBy) {
			return errors.New("some member still saw another as not alive after 60s: this machine is too loaded for the simulation")
		}
		quiet = true
		for _, s := range servers {
			for _, m := range s.c.Members() {
				if m.State != buddy.StateAlive {
					quiet = false
				}
			}
		}
		if !quiet {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	dead := map[string]bool{}
	var live []*simServer
	for i, s := range servers {
		// Kill every tenth server: each has live buddies, so all cameras
		// stay placeable.
		if i%(*nServers / *kill) == 0 && len(dead) < *kill {
			dead[s.name] = true
			continue
		}
		live = append(live, s)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	killedAt := time.Now()
	for _, s := range servers {
		if dead[s.name] {
			s.c.Shutdown()
		}
	}
	// Detection: when every live server sees every crashed one as dead,
	// split into the first suspicion and the first verdict anywhere.
	detected := make(chan time.Duration, 1)
	var firstSuspect, firstDead, lastSuspect time.Duration
	go func() {
		suspected := map[string]bool{}
		declared := map[string]bool{}
		for ctx.Err() == nil {
			all := true
			for _, s := range live {
				for _, m := range s.c.Members() {
					if !dead[m.Name] {
						continue
					}
					if m.State != buddy.StateAlive && !suspected[m.Name] {
						suspected[m.Name] = true
						if len(suspected) == 1 {
							firstSuspect = time.Since(killedAt)
						}
						if len(suspected) == len(dead) {
							lastSuspect = time.Since(killedAt)
						}
					}
					if m.State == buddy.StateDead && !declared[m.Name] {
						declared[m.Name] = true
						if len(declared) == 1 {
							firstDead = time.Since(killedAt)
						}
					}
					if m.State != buddy.StateDead {
						all = false
					}
				}
			}
			if all {
				detected <- time.Since(killedAt)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	_, double, err := wait(live, dead, 60*time.Second)
	if err != nil {
		return err
	}
	agreeAfter := time.Since(killedAt)
	var detection time.Duration
	select {
	case detection = <-detected:
	case <-time.After(30 * time.Second):
	}
	time.Sleep(2 * time.Second)
	_, doubleLater := agreed(live, dead)
	live[0].mu.Lock()
	unplaced := len(live[0].plan.Unplaced)
	live[0].mu.Unlock()
	fmt.Fprintf(stdout, "%d servers crashed at once: every live server's plan agrees %.2fs later (every live server saw all %d dead after %.2fs)\n", *kill, agreeAfter.Seconds(), *kill, detection.Seconds())
	fmt.Fprintf(stdout, "detection: first suspicion %.2fs, all %d suspected %.2fs, first declared dead %.2fs, all seen dead by all %.2fs\n", firstSuspect.Seconds(), *kill, lastSuspect.Seconds(), firstDead.Seconds(), detection.Seconds())
	fmt.Fprintf(stdout, "cameras owned by two live servers: %d at agreement, %d two seconds later; unplaced: %d\n", double, doubleLater, unplaced)
	return nil
}
