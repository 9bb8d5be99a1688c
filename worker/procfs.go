package worker

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux Go supports).
const clockTick = 10 * time.Millisecond

// procStat is what the supervisor reads of a worker from /proc.
type procStat struct {
	state byte
	cpu   time.Duration // user + system time since the process started
	rss   int64         // resident bytes
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// the command name (field 2) may hold spaces: fields count from the
	// last ')'
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+2:])
	// f[0] is field 3 (state); utime 14, stime 15, rss 24
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{state: f[0][0], cpu: time.Duration(ut+st) * clockTick, rss: rss * int64(os.Getpagesize())}, nil
}
