package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// procMemory is what a buddyrec process holds in memory at one moment:
// its resident set from /proc, and the Go runtime's own accounts
// (runtime.MemStats, as net/http/pprof prints them), before and after a
// forced collection.
type procMemory struct {
	// RSS is the mean of readings over two seconds (two GOPs of the
	// bench's cameras: a ring grows by a GOP between evictions), RSSMax
	// the largest.
	RSS, RSSMax uint64
	// Before a collection: heap pages in use and kept (not returned to
	// the OS), goroutine stacks, and the runtime's own structures.
	HeapInuse, HeapKept, Stacks, RuntimeSys uint64
	// HeapLive is the heap in use by reachable objects: HeapAlloc right
	// after a forced collection.
	HeapLive uint64
	NextGC   uint64
}

// sampleMemory reads the memory of the process pid, which serves
// net/http/pprof on pprofAddr. It forces one collection (to learn what is
// live), after reading everything else. With dir set it also saves the
// heap profile (inuse_space, after the collection) as dir/name.pb.gz.
func sampleMemory(ctx context.Context, pid int, pprofAddr, dir, name string) (procMemory, error) {
	var m procMemory
	const readings = 20
	for i := range readings {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		r := procRSS(pid)
		m.RSS += r / readings
		m.RSSMax = max(m.RSSMax, r)
	}
	before, err := fetchMemStats(ctx, pprofAddr, false)
	if err != nil {
		return m, err
	}
	m.HeapInuse = before["HeapInuse"]
	m.HeapKept = before["HeapSys"] - before["HeapReleased"]
	m.Stacks = before["StackSys"]
	m.RuntimeSys = before["MSpanSys"] + before["MCacheSys"] + before["BuckHashSys"] + before["GCSys"] + before["OtherSys"]
	m.NextGC = before["NextGC"]
	after, err := fetchMemStats(ctx, pprofAddr, true)
	if err != nil {
		return m, err
	}
	m.HeapLive = after["HeapAlloc"]
	if dir != "" {
		if err := saveHeapProfile(ctx, pprofAddr, filepath.Join(dir, name+".pb.gz")); err != nil {
			return m, err
		}
	}
	return m, nil
}

// fetchMemStats reads the "# Name = value" lines of the heap profile's
// text form; gc forces a collection first.
func fetchMemStats(ctx context.Context, addr string, gc bool) (map[string]uint64, error) {
	u := "http://" + addr + "/debug/pprof/heap?debug=1"
	if gc {
		u += "&gc=1"
	}
	body, err := httpGet(ctx, u)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok {
			continue
		}
		if k == "Stack" { // "# Stack = inuse / sys"
			if _, sys, ok := strings.Cut(v, " / "); ok {
				k, v = "StackSys", sys
			}
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := out["HeapAlloc"]; !ok {
		return nil, fmt.Errorf("%s: no runtime.MemStats in the answer", u)
	}
	return out, nil
}

func saveHeapProfile(ctx context.Context, addr, file string) error {
	body, err := httpGet(ctx, "http://"+addr+"/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func httpGet(ctx context.Context, u string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return struct {
		io.Reader
		io.Closer
	}{resp.Body, closerFunc(func() error { defer cancel(); return resp.Body.Close() })}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// processSet is the memory of a server's processes, summed.
type processSet struct {
	n         int
	anon, pss uint64
}

func weighProcesses(pids []int) processSet {
	return processSet{n: len(pids), anon: anonOf(pids), pss: pssOf(pids)}
}

// reportStandbyMemory prints what the hot standby sessions cost the buddy
// against the target's unit, bitrate × window, where window is the span
// each ring must hold (failover_after + keepalive + 2 parts + 2 GOPs, as
// the buddy reports it): what the rings hold, and the process's resident
// memory with the sessions against without, split by what the Go runtime
// says it is.
//
// The sessions run where the buddy records (worker processes at the
// default grouping), so all its processes are weighed, and a worker's own
// cost (its runtime and heap) is part of the figures. The one held to
// the target is anonymous resident memory: what the processes allocated
// (heaps, stacks, the rings' arenas), without the pages of the binary,
// which the server pays once, whatever its cameras, and which on this
// machine the home's process shares. The Go runtime's split is of the
// buddy's own process, so it is printed only when that is where the
// sessions run.
func reportStandbyMemory(w io.Writer, sessions []api.CameraInfo, with, alone procMemory, procsWith, procsAlone processSet) {
	if len(sessions) == 0 {
		return
	}
	var held, resident, unit, need, span float64
	for _, s := range sessions {
		held += float64(s.HeldBytes)
		resident += float64(s.ResidentBytes)
		unit += s.BitrateBps / 8 * s.NeedSeconds
		need += s.NeedSeconds
		span += s.HeldSeconds
	}
	n := float64(len(sessions))
	mib := func(b float64) string { return fmt.Sprintf("%.2f MiB", b/n/(1<<20)) }
	ratio := func(b float64) string { return fmt.Sprintf("%.2f ×", b/unit) }
	d := func(a, b uint64) float64 { return float64(a) - float64(b) }
	fmt.Fprintf(w, "hot standby: %d sessions, each ring must hold %.1f s (mean; failover_after + keepalive + 2 parts + 2 GOPs) and holds %.1f s\n",
		len(sessions), need/n, span/n)
	fmt.Fprintf(w, "  bitrate × window        %s per camera\n", mib(unit))
	fmt.Fprintf(w, "  ring payload            %s per camera = %s bitrate × window (at the rings' keyframes; %s of pages)\n", mib(held), ratio(held), mib(resident))
	anon, pss := d(procsWith.anon, procsAlone.anon), d(procsWith.pss, procsAlone.pss)
	fmt.Fprintf(w, "  anonymous memory        %s per camera = %s bitrate × window  (RssAnon of the buddy's %d process(es): %.1f MiB with the sessions, %.1f MiB without)\n",
		mib(anon), ratio(anon), procsWith.n, float64(procsWith.anon)/(1<<20), float64(procsAlone.anon)/(1<<20))
	fmt.Fprintf(w, "  proportional set size   %s per camera = %s  (the binary's pages shared with the home's process on this machine)\n", mib(pss), ratio(pss))
	if procsWith.n > 1 {
		fmt.Fprintf(w, "  (the sessions run in worker processes; -cameras-per-worker 0 splits their memory by what the Go runtime says it is)\n")
		return
	}
	rss, peak := d(with.RSS, alone.RSS), d(with.RSSMax, alone.RSS)
	fmt.Fprintf(w, "  resident memory         %s per camera = %s bitrate × window, at most %s = %s  (buddy %.1f MiB with the sessions, %.1f MiB without)\n",
		mib(rss), ratio(rss), mib(peak), ratio(peak), float64(with.RSS)/(1<<20), float64(alone.RSS)/(1<<20))
	live, kept := d(with.HeapLive, alone.HeapLive), d(with.HeapKept, alone.HeapKept)
	stacks, runtime := d(with.Stacks, alone.Stacks), d(with.RuntimeSys, alone.RuntimeSys)
	fmt.Fprintf(w, "    Go heap, live         %s per camera = %s\n", mib(live), ratio(live))
	fmt.Fprintf(w, "    Go heap, beyond live  %s per camera = %s (garbage not yet collected, free pages not yet returned)\n", mib(kept-live), ratio(kept-live))
	fmt.Fprintf(w, "    stacks, runtime       %s, %s per camera\n", mib(stacks), mib(runtime))
	fmt.Fprintf(w, "    the rest (rings' arenas, outside the Go heap, and other pages)  %s per camera = %s\n", mib(rss-kept-stacks-runtime), ratio(rss-kept-stacks-runtime))
	fmt.Fprintf(w, "    heap goal (next GC)   %.1f MiB with the sessions, live %.1f MiB\n", float64(with.NextGC)/(1<<20), float64(with.HeapLive)/(1<<20))
}
