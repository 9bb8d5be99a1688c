package testutil

import (
	"testing"
	"time"
)

// Poll intervals of Eventually: the first checks come quickly so that
// measured waits (detection times logged by tests) stay precise, later ones
// back off so a long wait does not load a shared machine.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// Eventually waits until cond holds and returns how long that took. It
// fails t, naming what it waited for, when timeout passes first. Timeouts
// are bounds for a loaded machine, never performance assertions.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return EventuallyMsg(t, timeout, func() string {
		if cond() {
			return ""
		}
		return "still waiting for " + what
	})
}

// EventuallyMsg is Eventually for conditions that say what is still wrong:
// cond returns "" once it holds, and its last message is the failure.
func EventuallyMsg(t testing.TB, timeout time.Duration, cond func() string) time.Duration {
	t.Helper()
	took, msg := Poll(timeout, cond)
	if msg != "" {
		t.Fatalf("after %s: %s", timeout, msg)
	}
	return took
}

// Poll runs cond until it returns "" or timeout passes, and returns how long
// it waited and cond's last answer. Use it where a test goes on (or fails
// with more context) after a wait that may not end.
func Poll(timeout time.Duration, cond func() string) (time.Duration, string) {
	start := time.Now()
	interval := firstPoll
	for {
		msg := cond()
		if msg == "" {
			return time.Since(start), ""
		}
		if time.Since(start) > timeout {
			return time.Since(start), msg
		}
		time.Sleep(interval)
		interval = min(2*interval, maxPoll)
	}
}
