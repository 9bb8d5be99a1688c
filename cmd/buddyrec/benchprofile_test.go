package main

import (
	"os"
	"testing"
)

func TestParseProcCounters(t *testing.T) {
	for _, tc := range []struct {
		name               string
		status, io         string
		vol, invol, rd, wr uint64
	}{
		{"real files",
			"Name:\tbuddyrec\nThreads:\t9\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n",
			"rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 3\nread_bytes: 0\n",
			1234, 56, 10, 3},
		{"empty", "", "", 0, 0, 0, 0},
		{"garbage values are skipped", "voluntary_ctxt_switches: x\nnonvoluntary_ctxt_switches: 7", "syscr: -1\nsyscw: 9", 0, 7, 0, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, n := parseCtxtSwitches(tc.status)
			r, w := parseSyscalls(tc.io)
			if v != tc.vol || n != tc.invol || r != tc.rd || w != tc.wr {
				t.Fatalf("got switches %d/%d syscalls %d/%d, want %d/%d %d/%d", v, n, r, w, tc.vol, tc.invol, tc.rd, tc.wr)
			}
		})
	}
}

// TestProcStatusBytes: the bench's memory figures come from
// /proc/PID/status lines, in bytes; a missing line or process is 0.
func TestProcStatusBytes(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	rss, anon := procRSS(pid), procStatusBytes(pid, "RssAnon:")
	if rss == 0 || anon == 0 || anon > rss {
		t.Errorf("VmRSS %d, RssAnon %d: want both > 0 and anonymous within resident", rss, anon)
	}
	if got := anonOf([]int{pid, pid}); got < anon {
		t.Errorf("anonOf twice the process = %d, want about %d", got, 2*anon)
	}
	if got := procStatusBytes(pid, "NoSuchLine:"); got != 0 {
		t.Errorf("a missing line reads %d, want 0", got)
	}
	if got := procStatusBytes(1<<30, "VmRSS:"); got != 0 {
		t.Errorf("a missing process reads %d, want 0", got)
	}
}
