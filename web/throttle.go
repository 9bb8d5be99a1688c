package web

import (
	"log/slog"
	"sync"
	"time"
)

// failureLimiter throttles failed logins per source address with a token
// bucket: an address may fail burst times, then once per every. It bounds
// how much bcrypt work a password-guessing client can cause (each wrong
// password costs a full comparison), and it logs a burst of failures as two
// lines (the first failure, the throttling) plus one a minute while the
// address keeps trying, instead of one line per attempt.
type failureLimiter struct {
	burst int
	every time.Duration
	log   *slog.Logger

	mu    sync.Mutex
	addrs map[string]*failures
}

// failures is one address's bucket and its burst's counters.
type failures struct {
	tokens    float64   // tries left, refilled one per every
	at        time.Time // when tokens was last refilled
	failed    int       // failures in this burst
	refused   int       // throttled requests since the last log line
	throttled bool
	loggedAt  time.Time
}

// Bounds of the per-address table: above maxTracked, addresses whose bucket
// is full again are forgotten; a table still above hardMaxTracked (a flood
// from very many addresses) is cleared, the bound on concurrent checks still
// holding the cost.
const (
	maxTracked     = 4096
	hardMaxTracked = 65536
)

func newFailureLimiter(burst int, every time.Duration, log *slog.Logger) *failureLimiter {
	if burst <= 0 {
		burst = 5
	}
	if every <= 0 {
		every = 6 * time.Second
	}
	return &failureLimiter{burst: burst, every: every, log: log, addrs: map[string]*failures{}}
}

// refill brings f's bucket to now; it reports whether the bucket is full,
// i.e. the address's burst is over.
func (l *failureLimiter) refill(f *failures, now time.Time) bool {
	if d := now.Sub(f.at); d > 0 {
		f.tokens = min(float64(l.burst), f.tokens+float64(d)/float64(l.every))
		f.at = now
	}
	return f.tokens >= float64(l.burst)
}

// throttled reports whether remote must wait before its next try, and how
// long.
func (l *failureLimiter) throttled(remote string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.addrs[remote]
	if f == nil {
		return 0, false
	}
	l.refill(f, now)
	if f.tokens >= 1 {
		return 0, false
	}
	f.refused++
	if now.Sub(f.loggedAt) >= time.Minute {
		l.log.Warn("still throttling failed logins", "remote", remote, "failures", f.failed, "refused", f.refused, "since", now.Sub(f.loggedAt).Round(time.Second))
		f.refused, f.loggedAt = 0, now
	}
	return time.Duration((1 - f.tokens) * float64(l.every)), true
}

// failed records a failed login of kind ("basic", "bearer", "rtsp") by user
// from remote.
func (l *failureLimiter) failed(remote, kind, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.addrs[remote]
	if f != nil && l.refill(f, now) {
		f = nil // the last burst is over: a new one starts
	}
	if f == nil {
		l.prune(now)
		f = &failures{tokens: float64(l.burst), at: now}
		l.addrs[remote] = f
	}
	f.tokens--
	f.failed++
	attrs := []any{"kind", kind, "remote", remote}
	if user != "" {
		attrs = append(attrs, "user", user)
	}
	switch {
	case f.failed == 1:
		l.log.Warn("login failed", attrs...)
	case f.tokens < 1 && !f.throttled:
		f.throttled, f.loggedAt = true, now
		l.log.Warn("too many failed logins: throttling the address", append(attrs, "failures", f.failed,
			"retry_after", time.Duration((1-f.tokens)*float64(l.every)).Round(time.Second))...)
	}
}

// prune keeps the table bounded; called with l.mu held.
func (l *failureLimiter) prune(now time.Time) {
	if len(l.addrs) < maxTracked {
		return
	}
	for a, f := range l.addrs {
		if l.refill(f, now) {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) >= hardMaxTracked {
		clear(l.addrs)
	}
}
