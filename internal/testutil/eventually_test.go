package testutil

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	var calls atomic.Int32
	took := Eventually(t, 5*time.Second, "third call", func() bool { return calls.Add(1) >= 3 })
	if calls.Load() != 3 {
		t.Errorf("cond called %d times, want 3", calls.Load())
	}
	if took <= 0 || took > 5*time.Second {
		t.Errorf("took %s", took)
	}

	f := &fakeTB{TB: t}
	Eventually(f, 30*time.Millisecond, "never", func() bool { return false })
	if !strings.Contains(f.failed, "after 30ms") || !strings.Contains(f.failed, "never") {
		t.Errorf("failure message %q does not name the wait", f.failed)
	}
}

func TestEventuallyMsg(t *testing.T) {
	f := &fakeTB{TB: t}
	n := 0
	EventuallyMsg(f, 30*time.Millisecond, func() string { n++; return fmt.Sprintf("try %d", n) })
	if f.failed != fmt.Sprintf("after 30ms: try %d", n) {
		t.Errorf("failure %q, want the last message (try %d)", f.failed, n)
	}
	f = &fakeTB{TB: t}
	EventuallyMsg(f, time.Second, func() string { return "" })
	if f.failed != "" {
		t.Errorf("a condition that holds failed: %q", f.failed)
	}
}

func TestPoll(t *testing.T) {
	if took, msg := Poll(time.Second, func() string { return "" }); msg != "" || took > time.Second {
		t.Errorf("Poll of a true condition = %s, %q", took, msg)
	}
	if _, msg := Poll(10*time.Millisecond, func() string { return "no" }); msg != "no" {
		t.Errorf("Poll of a false condition = %q, want its message", msg)
	}
}
