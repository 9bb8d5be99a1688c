package node

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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

// residentBytes is the process's resident set size: VmRSS of
// /proc/self/status, what top and ps show as RES/RSS.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return vmRSS(string(b))
}

// vmRSS reads the VmRSS line ("VmRSS:	   25432 kB") of a status file.
func vmRSS(status string) uint64 {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
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
