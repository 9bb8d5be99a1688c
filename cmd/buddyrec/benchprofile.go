package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/internal/profsock"
)

// benchProfile takes a CPU profile and counters of every process of one
// `bench record` run over its measurement window (`-profile DIR`): the
// supervisor and each worker serve them on a socket in dir (profsock,
// turned on by the environment variable the bench gives the server).
type benchProfile struct {
	dir    string
	window time.Duration
	socks  map[int]string // pid -> socket
	before map[int]procCounters
	wg     sync.WaitGroup
	mu     sync.Mutex
	files  map[int]string // pid -> profile written
	errs   []error
}

// procCounters are what /proc tells of a process: its CPU time and its
// context switches summed over all its threads (each wake-up from a
// blocking wait is a voluntary switch).
type procCounters struct {
	cpu                    time.Duration
	voluntary, involuntary uint64
	threads                int
	gcCycles               uint64
	allocBytes             uint64 // heap bytes allocated (runtime/metrics)
	role                   string
	// syscr and syscw count the read- and write-like system calls
	// (/proc/PID/io: read, recvmsg, ... and write, writev, sendmsg, ...)
	syscr, syscw uint64
}

// readProcCounters sums /proc/PID/task/*/status.
func readProcCounters(pid int) procCounters {
	c := procCounters{cpu: procCPU(pid)}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		c.syscr, c.syscw = parseSyscalls(string(b))
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		c.threads++
		v, n := parseCtxtSwitches(string(b))
		c.voluntary += v
		c.involuntary += n
	}
	return c
}

// parseCtxtSwitches reads the two context switch counters of a
// /proc/.../status text.
func parseCtxtSwitches(status string) (voluntary, involuntary uint64) {
	return procPair(status, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
}

// parseSyscalls reads syscr and syscw of a /proc/PID/io text.
func parseSyscalls(io string) (syscr, syscw uint64) {
	return procPair(io, "syscr", "syscw")
}

// procPair reads the counters named a and b from a /proc text of
// "key: number" lines; a missing or unreadable one is 0.
func procPair(text, a, b string) (va, vb uint64) {
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case a:
			va = n
		case b:
			vb = n
		}
	}
	return va, vb
}

// startBenchProfile starts a CPU profile of window in every process of pids
// that serves one in dir.
func startBenchProfile(ctx context.Context, dir string, pids []int, window time.Duration) *benchProfile {
	p := &benchProfile{dir: dir, window: window, socks: map[int]string{}, before: map[int]procCounters{}, files: map[int]string{}}
	socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	for _, s := range socks {
		name := strings.TrimSuffix(filepath.Base(s), ".sock")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if pid, err := strconv.Atoi(name[i+1:]); err == nil {
				p.socks[pid] = s
			}
		}
	}
	for _, pid := range pids {
		c := readProcCounters(pid)
		sock := p.socks[pid]
		if sock == "" {
			p.before[pid] = c
			continue
		}
		if n, err := getCounts(ctx, sock); err == nil {
			c.gcCycles, c.allocBytes, c.role = n.GCCycles, n.HeapAllocs, n.Role
		}
		p.before[pid] = c
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			file := strings.TrimSuffix(sock, ".sock") + ".pprof"
			err := fetchProfile(ctx, sock, window, file)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.errs = append(p.errs, fmt.Errorf("profile of pid %d: %w", pid, err))
				return
			}
			p.files[pid] = file
		}()
	}
	return p
}

func getCounts(ctx context.Context, sock string) (profsock.Counts, error) {
	var c profsock.Counts
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://profile"+profsock.CountsPath, nil)
	if err != nil {
		return c, err
	}
	resp, err := profsock.Client(sock).Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	return c, json.NewDecoder(resp.Body).Decode(&c)
}

func fetchProfile(ctx context.Context, sock string, window time.Duration, file string) error {
	ctx, cancel := context.WithTimeout(ctx, window+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://profile/debug/pprof/profile?seconds=%d", int(window.Round(time.Second)/time.Second)), nil)
	if err != nil {
		return err
	}
	resp, err := profsock.Client(sock).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return saveBody(resp.Body, file)
}

// saveBody writes what r holds to a new file at path.
func saveBody(r io.Reader, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// finish waits for the profiles and returns one line per process: its CPU
// time, garbage collections, context switches and threads over the
// window, and where its profile is.
func (p *benchProfile) finish(ctx context.Context, elapsed time.Duration) []string {
	after := map[int]procCounters{}
	for pid := range p.before {
		c := readProcCounters(pid)
		if sock := p.socks[pid]; sock != "" {
			if n, err := getCounts(ctx, sock); err == nil {
				c.gcCycles, c.allocBytes, c.role = n.GCCycles, n.HeapAllocs, n.Role
			}
		}
		after[pid] = c
	}
	p.wg.Wait()
	pids := make([]int, 0, len(after))
	for pid := range after {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	s := elapsed.Seconds()
	var lines []string
	var tot procCounters
	for _, pid := range pids {
		b, a := p.before[pid], after[pid]
		d := procCounters{cpu: a.cpu - b.cpu, voluntary: a.voluntary - b.voluntary, involuntary: a.involuntary - b.involuntary, gcCycles: a.gcCycles - b.gcCycles, allocBytes: a.allocBytes - b.allocBytes, threads: a.threads,
			syscr: a.syscr - b.syscr, syscw: a.syscw - b.syscw}
		tot.syscr += d.syscr
		tot.syscw += d.syscw
		tot.cpu += d.cpu
		tot.voluntary += d.voluntary
		tot.involuntary += d.involuntary
		tot.gcCycles += d.gcCycles
		tot.allocBytes += d.allocBytes
		tot.threads += d.threads
		lines = append(lines, p.line(a.role, fmt.Sprintf("pid %d", pid), d, s)+"  "+p.files[pid])
	}
	lines = append(lines, p.line("all", "", tot, s))
	for _, err := range p.errs {
		lines = append(lines, "  "+err.Error())
	}
	return lines
}

// line formats one process's (or the sum's) counters over s seconds.
func (p *benchProfile) line(role, pid string, d procCounters, s float64) string {
	return fmt.Sprintf("  %-9s %-11s CPU %5.1f s  GC %4d (%.1f/s, %5.1f MB/s allocated)  syscalls read %6.0f/s write %5.0f/s  context switches %6.0f/s voluntary, %5.0f/s involuntary  threads %2d",
		role, pid, d.cpu.Seconds(), d.gcCycles, float64(d.gcCycles)/s, float64(d.allocBytes)/1e6/s, float64(d.syscr)/s, float64(d.syscw)/s, float64(d.voluntary)/s, float64(d.involuntary)/s, d.threads)
}
