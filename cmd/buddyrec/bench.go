package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/profsock"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/recorder"
)

// benchmark is one `buddyrec bench` command.
type benchmark struct {
	name string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// benchmarks lists every `buddyrec bench` command; the usage texts are made
// from it, so they cannot miss one.
func benchmarks() []benchmark {
	return []benchmark{
		{"record", benchRecord},
		{"failover", benchFailover},
		{"planner", benchPlanner},
		{"live", benchLive},
		{"backfill", benchBackfill},
	}
}

// benchNames is "record|failover|..." for usage texts.
func benchNames() string {
	var names []string
	for _, b := range benchmarks() {
		names = append(names, b.name)
	}
	return strings.Join(names, "|")
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "usage: buddyrec bench %s [flags]\n", benchNames())
		return 2
	}
	var run func(context.Context, []string, io.Writer, io.Writer) error
	for _, b := range benchmarks() {
		if b.name == args[0] {
			run = b.run
		}
	}
	if run == nil {
		fmt.Fprintf(stderr, "buddyrec bench: unknown benchmark %q (%s)\n", args[0], benchNames())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, args[1:], stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "buddyrec bench:", err)
		return 1
	}
	return 0
}

// benchEnv is what the server benchmarks start from: a folder for the
// site, simulated cameras running in this process and this binary to run
// the servers. Cameras run here, recorders in child processes, so the
// child's CPU and memory are the recorder's alone.
type benchEnv struct {
	dir  string
	cams *camsim.Server
	urls []string
	bin  string
	keep bool // leave dir behind on Close
}

// newBenchEnv makes the folder and starts n cameras playing the clips of
// codec. Close stops them and removes the folder unless keep.
func newBenchEnv(ctx context.Context, n int, clips, codec string, keep bool) (*benchEnv, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "buddyrec-bench-")
	if err != nil {
		return nil, err
	}
	cams, err := camsim.Start(ctx, camsim.Options{Listen: "127.0.0.1:0", Cameras: n, ClipDir: clips, Codec: codec})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cameras: %w", err)
	}
	e := &benchEnv{dir: dir, cams: cams, bin: bin, keep: keep}
	for i := range n {
		e.urls = append(e.urls, cams.URL(i+1))
	}
	return e, nil
}

// cameras is one site camera per simulated one: cam1, cam2, ...
func (e *benchEnv) cameras() []site.Camera {
	out := make([]site.Camera, len(e.urls))
	for i, u := range e.urls {
		out[i] = site.Camera{Name: fmt.Sprintf("cam%d", i+1), URL: u}
	}
	return out
}

func (e *benchEnv) Close() {
	e.cams.Close()
	if !e.keep {
		os.RemoveAll(e.dir)
	}
}

func benchRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("cameras", 50, "simulated cameras (~2 Mbit/s H.264 + AAC each)")
	dur := fs.Duration("duration", 60*time.Second, "how long to record (each run)")
	clips := fs.String("clips", "testdata", "folder with the camera clips")
	codec := fs.String("codec", "h264", "h264 or h265")
	keep := fs.Bool("keep", false, "keep the recordings folder")
	isolation := fs.String("isolation", "both", "off (cameras in the server process), on (in worker processes) or both, side by side")
	perWorker := fs.Int("cameras-per-worker", config.DefaultCamerasPerWorker, "[recorder] cameras_per_worker of the isolated run")
	profile := fs.String("profile", "", "take a CPU profile of every process (server, each worker) over the measurement into this folder, and print per-process counts")
	rounds := fs.Int("rounds", 1, "with -isolation both: how many off/on pairs to run, alternating; the median of their costs is printed (single runs on a shared machine differ by up to 25 %)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 {
		return fmt.Errorf("-rounds: want at least 1")
	}
	var modes []int // cameras_per_worker of each run
	switch *isolation {
	case "off":
		modes = []int{0}
	case "on":
		modes = []int{*perWorker}
	case "both":
		modes = []int{0, *perWorker}
	default:
		return fmt.Errorf("-isolation: %q is not off, on or both", *isolation)
	}
	if *perWorker < 1 {
		return fmt.Errorf("-cameras-per-worker: want at least 1")
	}
	env, err := newBenchEnv(ctx, *n, *clips, *codec, *keep)
	if err != nil {
		return err
	}
	defer env.Close()
	idle, err := idleRSS(ctx, env.dir, env.bin)
	if err != nil {
		return err
	}
	var results []recordResult
	var runs []int
	for range *rounds {
		runs = append(runs, modes...)
	}
	for _, per := range runs {
		var r recordResult
		for try := 1; ; try++ {
			fmt.Fprintf(stdout, "recording %d cameras for %s into %s (%s) ...\n", *n, *dur, env.dir, isolationName(per))
			r, err = recordRun(ctx, env, *n, per, *dur, *profile)
			why := ""
			switch {
			case err != nil:
				why = err.Error()
			case r.disturbed():
				why = fmt.Sprintf("the cameras sent %.1f %% of their real-time frames: their sender was held up (the machine stalled), which the recorder then paid for", 100*float64(r.sent)/r.realTime)
			}
			if why == "" {
				break
			}
			if try == 3 || ctx.Err() != nil {
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "  disturbed three times, kept: %s\n", why)
				break
			}
			fmt.Fprintf(stdout, "  run disturbed, running it again: %s\n", why)
			if !*keep {
				os.RemoveAll(filepath.Join(env.dir, fmt.Sprintf("run-%d", per))) //nolint:errcheck // env.Close removes the rest
			}
		}
		results = append(results, r)
		// The next run starts with no writeback pending: 2 GB of this
		// run's footage still being flushed made the next run's writes
		// cost up to 4 times the CPU (writev, in the kernel), which
		// counted against whichever mode came second.
		if !*keep {
			os.RemoveAll(filepath.Join(env.dir, fmt.Sprintf("run-%d", per))) //nolint:errcheck // env.Close removes the rest
		}
		syscall.Sync()
	}
	for _, r := range results {
		camMin := float64(*n) * r.elapsed.Minutes()
		fmt.Fprintf(stdout, "\n%s:\n", isolationName(r.perWorker))
		fmt.Fprintf(stdout, "cameras            %d (%d recording at the end), %s measured, %d process(es)\n", *n, r.recording, r.elapsed.Round(time.Second), r.procs)
		fmt.Fprintf(stdout, "CPU                %.3f CPU-s per camera-minute (%.1f CPU-s total, %.0f%% of one core), all processes\n", r.cpu.Seconds()/camMin, r.cpu.Seconds(), 100*r.cpu.Seconds()/r.elapsed.Seconds())
		if r.procs > 1 {
			fmt.Fprintf(stdout, "                   of which the supervisor %.1f CPU-s, the %d workers %.1f CPU-s\n", r.supervisorCPU.Seconds(), r.procs-1, (r.cpu - r.supervisorCPU).Seconds())
		}
		fmt.Fprintf(stdout, "memory             %.2f MB resident per camera all in (%.1f MB proportional set size summed over the processes, the shared binary counted once; %.1f MB idle server with no camera; RSS summed %.1f MB)\n",
			float64(r.pss)/1e6/float64(*n), float64(r.pss)/1e6, float64(idle)/1e6, float64(r.rss)/1e6)
		fmt.Fprintf(stdout, "written            %.1f MB per camera-minute (%.0f MB in all, index included)\n", float64(r.bytes)/1e6/camMin, float64(r.bytes)/1e6)
		fmt.Fprintf(stdout, "video frames sent  %d during the measurement (%.1f %% of real time); frames received in all %d, dropped %d\n", r.sent, 100*float64(r.sent)/r.realTime, r.received, r.dropped)
		if len(r.profile) > 0 {
			fmt.Fprintf(stdout, "per process (go tool pprof -top FILE):\n%s\n", strings.Join(r.profile, "\n"))
		}
	}
	if len(modes) == 2 {
		var costs []float64
		fmt.Fprintln(stdout)
		for i := 0; i+1 < len(results); i += 2 {
			off, on := results[i], results[i+1]
			c := 100 * (on.cpu.Seconds()/on.elapsed.Seconds()/(off.cpu.Seconds()/off.elapsed.Seconds()) - 1)
			costs = append(costs, c)
			fmt.Fprintf(stdout, "isolation costs    %+.0f%% CPU, %+.2f MB resident per camera (%d cameras per worker)\n",
				c, (float64(on.pss)-float64(off.pss))/1e6/float64(*n), on.perWorker)
		}
		if len(costs) > 1 {
			slices.Sort(costs)
			fmt.Fprintf(stdout, "median of %d pairs %+.0f%% CPU (from %+.0f%% to %+.0f%%)\n", len(costs), median(costs), costs[0], costs[len(costs)-1])
		}
	}
	return nil
}

// isolationTag names a run's profile folder: off, or on-N.
func isolationTag(perWorker int) string {
	if perWorker == 0 {
		return "off"
	}
	return fmt.Sprintf("on-%d", perWorker)
}

func isolationName(perWorker int) string {
	if perWorker == 0 {
		return "isolation off: every camera in the server process"
	}
	return fmt.Sprintf("isolation on: %d cameras per worker process", perWorker)
}

// recordResult is one bench record run.
type recordResult struct {
	perWorker         int
	elapsed           time.Duration
	cpu               time.Duration // supervisor + workers
	supervisorCPU     time.Duration
	rss, pss          uint64 // supervisor + workers, at the end
	procs             int
	bytes             int64
	sent              int
	realTime          float64 // frames the cameras send in real time over elapsed
	received, dropped uint64
	recording         int
	profile           []string // -profile: one line per process
}

// disturbed reports a run whose cameras did not send in real time (more
// than 3 % off over the window): a stall of the bench's own process or of
// the machine, after which the cameras send what they owe at once, makes
// the recorder's CPU per camera-minute a figure of the stall.
func (r recordResult) disturbed() bool {
	return r.realTime > 0 && math.Abs(float64(r.sent)/r.realTime-1) > 0.03
}

// recordRun records the env's cameras with one server for dur and
// measures it, its workers included.
func recordRun(ctx context.Context, env *benchEnv, n, perWorker int, dur time.Duration, profileDir string) (recordResult, error) {
	r := recordResult{perWorker: perWorker}
	spec := site.ServerSpec{Name: "bench", Cameras: env.cameras()}
	if profileDir != "" {
		profileDir = filepath.Join(profileDir, isolationTag(perWorker))
		if err := os.MkdirAll(profileDir, 0o700); err != nil {
			return r, err
		}
		if abs, err := filepath.Abs(profileDir); err == nil {
			profileDir = abs
		}
		spec.Exec = []string{"env", profsock.Env + "=" + profileDir}
	}
	// set either way: the default is isolation on
	spec.Extra = fmt.Sprintf("[recorder]\ncameras_per_worker = %d\n", perWorker)
	s, err := site.New(site.Spec{Dir: filepath.Join(env.dir, fmt.Sprintf("run-%d", perWorker)), Bin: env.bin, Servers: []site.ServerSpec{spec}, Segment: "60s", Part: "1s", Insecure: true})
	if err != nil {
		return r, err
	}
	srv := s.Servers[0]
	// Standalone: no gossip, no buddies.
	if err := stripCluster(srv.Config); err != nil {
		return r, err
	}
	if err := srv.Start(); err != nil {
		return r, err
	}
	defer srv.Kill()
	if err := waitRecording(ctx, srv, n, 60*time.Second); err != nil {
		return r, err
	}
	pids := func() []int { return serverPids(srv) }
	cpuOf := func(ps []int) (t time.Duration) {
		for _, p := range ps {
			t += procCPU(p)
		}
		return t
	}
	before := pids()
	cpu0 := cpuOf(before)
	sup0 := procCPU(srv.Pid())
	sent0 := totalSent(env.cams, n)
	var prof *benchProfile
	if profileDir != "" {
		prof = startBenchProfile(ctx, profileDir, before, dur)
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(dur):
	}
	r.elapsed = time.Since(start)
	// read at once: what the profiles' collection takes is not measured
	after := pids()
	r.cpu = cpuOf(after) - cpu0
	r.supervisorCPU = procCPU(srv.Pid()) - sup0
	r.sent = totalSent(env.cams, n) - sent0
	r.realTime = env.cams.VideoRate() * float64(n) * r.elapsed.Seconds()
	if prof != nil {
		r.profile = prof.finish(ctx, r.elapsed)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		return r, fmt.Errorf("the worker processes changed during the measurement (%v, then %v): see %s", before, after, srv.Log)
	}
	for _, p := range after {
		r.rss += procRSS(p)
		r.pss += procPSS(p)
	}
	r.procs = len(after)
	var resp struct {
		Cameras []struct {
			FramesReceived uint64 `json:"frames_received"`
			FramesDropped  uint64 `json:"frames_dropped"`
			State          string `json:"state"`
		} `json:"cameras"`
	}
	// The figures are read once the measurement is over; on a shared
	// machine a stall of a few seconds should not cost the run.
	for range 3 {
		if err = srv.GetJSON(ctx, "/api/v1/cameras", &resp); err == nil {
			break
		}
	}
	if err != nil {
		return r, err
	}
	for _, c := range resp.Cameras {
		r.received += c.FramesReceived
		r.dropped += c.FramesDropped
		if c.State == recorder.StateRecording {
			r.recording++
		}
	}
	srv.Stop(30 * time.Second)
	r.bytes = dirBytes(srv.DataDir)
	return r, nil
}

// serverPids are the server's process and its live worker processes
// (their pid files under data_dir).
func serverPids(srv *site.Server) []int {
	out := []int{srv.Pid()}
	files, _ := filepath.Glob(filepath.Join(srv.DataDir, "workers", "w*.pid"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && procRSS(pid) > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// pssOf sums the proportional set sizes of pids.
func pssOf(pids []int) (sum uint64) {
	for _, p := range pids {
		sum += procPSS(p)
	}
	return sum
}

// anonOf sums the anonymous resident memory of pids (RssAnon: heaps,
// stacks, mmap'd arenas), leaving out the pages of files mapped (the
// binary's code, paid once per server and shared by its processes).
func anonOf(pids []int) (sum uint64) {
	for _, p := range pids {
		sum += procStatusBytes(p, "RssAnon:")
	}
	return sum
}

// idleRSS measures the resident memory of a server with no cameras, so
// that the per-camera figure is what each camera costs.
func idleRSS(ctx context.Context, dir, bin string) (uint64, error) {
	s, err := site.New(site.Spec{Dir: filepath.Join(dir, "idle"), Bin: bin, Servers: []site.ServerSpec{{Name: "idle"}}, Insecure: true})
	if err != nil {
		return 0, err
	}
	srv := s.Servers[0]
	if err := stripCluster(srv.Config); err != nil {
		return 0, err
	}
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer srv.Stop(10 * time.Second)
	if err := waitFor(ctx, 20*time.Second, func() bool { _, err := srv.Cameras(ctx); return err == nil }); err != nil {
		return 0, err
	}
	time.Sleep(3 * time.Second)
	return procRSS(srv.Pid()), nil
}

// stripCluster removes listen.gossip and the cluster table so the server
// runs standalone.
func stripCluster(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	skip := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "gossip ="):
			continue
		case strings.HasPrefix(l, "[cluster]"), strings.HasPrefix(l, "[failover]"):
			skip = true
			continue
		case strings.HasPrefix(l, "["):
			skip = false
		}
		if !skip {
			out = append(out, l)
		}
	}
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o600)
}

func waitRecording(ctx context.Context, srv *site.Server, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rec, err := srv.Recording(ctx)
		if err == nil && len(rec) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: only %d of %d cameras recording after %s (see %s)", srv.Name, len(rec), n, timeout, srv.Log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func totalSent(cams *camsim.Server, n int) int {
	t := 0
	for i := 1; i <= n; i++ {
		t += cams.Sent(i)
	}
	return t
}

// procCPU reads a process's user+system CPU time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procRSS reads a process's resident set size in bytes.
func procRSS(pid int) uint64 { return procStatusBytes(pid, "VmRSS:") }

// procStatusBytes reads one "Name: N kB" line of /proc/PID/status in
// bytes (0 if the process or the line is missing).
func procStatusBytes(pid int, name string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name) {
			f := strings.Fields(l)
			if len(f) < 2 {
				return 0
			}
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// procPSS reads a process's proportional set size in bytes: its resident
// pages, each shared page divided among the processes sharing it, so that
// a sum over processes counts the binary's pages once.
func procPSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Pss:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func dirBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

func serverState(ctx context.Context, srv *site.Server, name string) buddy.State {
	servers, err := srv.Cluster(ctx)
	if err != nil {
		return ""
	}
	for _, s := range servers {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
