package backfill

import (
	"context"
	"time"
)

// limiter is a token bucket of bytes: rate per second, a burst of a tenth
// of a second's worth (at least one chunk), so the copy never takes the
// disk or the network in long spurts. (golang.org/x/time/rate is not a
// dependency of this module; this is all the copy needs.)
type limiter struct {
	rate   float64 // bytes per second; 0 is unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64) *limiter {
	return &limiter{rate: rate, burst: max(rate/10, copyChunk), tokens: max(rate/10, copyChunk)}
}

// wait takes n bytes' worth of tokens, sleeping while the bucket is in
// debt. Only the copy goroutine calls it.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l.rate <= 0 {
		return ctx.Err()
	}
	now := time.Now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return ctx.Err()
	}
	d := time.Duration(-l.tokens / l.rate * float64(time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// setRate changes the rate between copies; a change empties the bucket
// of what the old rate granted.
func (l *limiter) setRate(rate float64) {
	if rate == l.rate {
		return
	}
	*l = *newLimiter(rate)
}
