// Package profsock serves Go's profiler and a few runtime counters of one
// process on a Unix socket, so that a benchmark can profile the supervisor
// and every worker process of a server side by side over the same window
// (`buddyrec bench record -profile DIR`).
//
// It is off unless the environment variable named by Env is set: a
// production server never sets it, and then nothing listens. The sockets
// are 0600 in the folder the benchmark made: profiles show memory
// contents, so they never go on a network.
package profsock

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/metrics"
	"time"
)

// Env names the environment variable that turns profiling on: the folder
// in which each process listens on ROLE-PID.sock. Worker processes
// inherit it from their supervisor.
const Env = "BUDDYREC_PROFILE_DIR"

// CountsPath is the route of the runtime counters (Counts, as JSON).
const CountsPath = "/debug/counts"

// Counts are the runtime counters a benchmark compares between processes:
// where per-process costs hide that a CPU profile shows only indirectly.
type Counts struct {
	Role string `json:"role"`
	PID  int    `json:"pid"`
	// GCCycles is the number of completed garbage collections.
	GCCycles uint64 `json:"gc_cycles"`
	// HeapGoal is the heap size the next GC aims for, in bytes.
	HeapGoal uint64 `json:"heap_goal_bytes"`
	// HeapAllocs is the bytes allocated on the heap since the process
	// began: its rate over a window is what drives GCCycles.
	HeapAllocs uint64 `json:"heap_allocs_bytes"`
	// Goroutines is the number of live goroutines.
	Goroutines uint64 `json:"goroutines"`
	// CPU is the runtime's estimate of its CPU seconds by class (see
	// runtime/metrics /cpu/classes): garbage collection, scavenger, idle
	// Ps, user code, and all of them.
	CPU struct {
		GC       float64 `json:"gc_s"`
		Scavenge float64 `json:"scavenge_s"`
		Idle     float64 `json:"idle_s"`
		User     float64 `json:"user_s"`
		Total    float64 `json:"total_s"`
	} `json:"cpu"`
}

// metric names read by ReadCounts, with where each goes.
var counters = []struct {
	name string
	set  func(*Counts, metrics.Value)
}{
	{"/gc/cycles/total:gc-cycles", func(c *Counts, v metrics.Value) { c.GCCycles = v.Uint64() }},
	{"/gc/heap/goal:bytes", func(c *Counts, v metrics.Value) { c.HeapGoal = v.Uint64() }},
	{"/gc/heap/allocs:bytes", func(c *Counts, v metrics.Value) { c.HeapAllocs = v.Uint64() }},
	{"/sched/goroutines:goroutines", func(c *Counts, v metrics.Value) { c.Goroutines = v.Uint64() }},
	{"/cpu/classes/gc/total:cpu-seconds", func(c *Counts, v metrics.Value) { c.CPU.GC = v.Float64() }},
	{"/cpu/classes/scavenge/total:cpu-seconds", func(c *Counts, v metrics.Value) { c.CPU.Scavenge = v.Float64() }},
	{"/cpu/classes/idle:cpu-seconds", func(c *Counts, v metrics.Value) { c.CPU.Idle = v.Float64() }},
	{"/cpu/classes/user:cpu-seconds", func(c *Counts, v metrics.Value) { c.CPU.User = v.Float64() }},
	{"/cpu/classes/total:cpu-seconds", func(c *Counts, v metrics.Value) { c.CPU.Total = v.Float64() }},
}

// ReadCounts reads this process's counters.
func ReadCounts(role string) Counts {
	samples := make([]metrics.Sample, len(counters))
	for i, c := range counters {
		samples[i].Name = c.name
	}
	metrics.Read(samples)
	out := Counts{Role: role, PID: os.Getpid()}
	for i, s := range samples {
		if s.Value.Kind() != metrics.KindBad {
			counters[i].set(&out, s.Value)
		}
	}
	return out
}

// Handler serves net/http/pprof under /debug/pprof/ and the counters at
// CountsPath.
func Handler(role string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET "+CountsPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ReadCounts(role)) //nolint:errcheck
	})
	return mux
}

// SocketPath is where a process of role listens in dir.
func SocketPath(dir, role string, pid int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%d.sock", role, pid))
}

// ServeFromEnv serves Handler(role) on SocketPath(dir, role, pid) until ctx
// ends when the environment names a folder (Env), and does nothing
// otherwise. It returns the socket's path ("" when off).
func ServeFromEnv(ctx context.Context, role string) (string, error) {
	dir := os.Getenv(Env)
	if dir == "" {
		return "", nil
	}
	return Serve(ctx, dir, role)
}

// Serve serves Handler(role) on a Unix socket in dir until ctx ends and
// returns the socket's path.
func Serve(ctx context.Context, dir, role string) (string, error) {
	path := SocketPath(dir, role, os.Getpid())
	os.Remove(path) //nolint:errcheck // a stale one of a recycled pid
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", fmt.Errorf("profile socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return "", fmt.Errorf("profile socket: %w", err)
	}
	// profiles take as long as their ?seconds= asks: no write timeout
	srv := &http.Server{Handler: Handler(role), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	go func() {
		<-ctx.Done()
		srv.Close()
		os.Remove(path) //nolint:errcheck
	}()
	return path, nil
}

// Client returns an HTTP client whose every request goes to the socket at
// path (the URL's host is ignored).
func Client(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}
