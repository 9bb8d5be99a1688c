package node

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/events"
)

// cpuSampler turns the process's cumulative CPU time into a recent fraction
// of all cores, for the load figure servers gossip.
type cpuSampler struct {
	mu      sync.Mutex
	lastAt  time.Time
	lastCPU time.Duration
	frac    float64
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *cpuSampler) sample(now time.Time, cores int) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.lastAt) < 2*time.Second {
		return c.frac
	}
	cpu := processCPU()
	if !c.lastAt.IsZero() {
		c.frac = float64(cpu-c.lastCPU) / float64(now.Sub(c.lastAt)) / float64(max(cores, 1))
	}
	c.lastAt, c.lastCPU = now, cpu
	return c.frac
}

// residentBytes reads the process's resident set size from /proc.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func diskUsage(dir string) (used, total uint64) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, 0
	}
	total = s.Blocks * uint64(s.Bsize)
	free := s.Bavail * uint64(s.Bsize)
	return total - free, total
}

func eventOf(server, typ, severity string, cameras []string, text string) events.Event {
	return events.Event{Type: events.Type(typ), Severity: events.Severity(severity), Server: server, Cameras: cameras, Text: text}
}
