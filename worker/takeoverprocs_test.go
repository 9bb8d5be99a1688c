package worker

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// procsRecorder is a fake runtime.GOMAXPROCS: it records what it was
// set to.
type procsRecorder struct {
	mu    sync.Mutex
	procs int
	sets  []int
}

func (r *procsRecorder) set(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.procs
	r.procs = n
	r.sets = append(r.sets, n)
	return prev
}

func (r *procsRecorder) calls() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

func TestTakeoverProcs(t *testing.T) {
	const linger = 50 * time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []bool // true begins a ring's drain, false ends one
		pause []bool // after step i, wait until the Ps were given back
		want  []int  // GOMAXPROCS set, in order, once all is settled
	}{
		{name: "one takeover", steps: []bool{true, false}, want: []int{2, 1}},
		{name: "twenty overlapping: lent once, given back once",
			steps: append(slices.Repeat([]bool{true}, 20), slices.Repeat([]bool{false}, 20)...), want: []int{2, 1}},
		{name: "rings written one after another within the linger: lent once",
			steps: []bool{true, false, true, false, true, false}, want: []int{2, 1}},
		{name: "two bursts apart: lent twice",
			steps: []bool{true, false, true, false}, pause: []bool{false, true, false, false}, want: []int{2, 1, 2, 1}},
		{name: "an end without a begin changes nothing", steps: []bool{false}, want: nil},
		{name: "still draining: not given back", steps: []bool{true, true, false}, want: []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &procsRecorder{procs: 1}
			p := &takeoverProcs{set: r.set, procs: 2, linger: linger}
			given := func() bool { // the Ps were given back, or are kept for a drain
				p.mu.Lock()
				defer p.mu.Unlock()
				return !p.lent || p.active > 0
			}
			settle := func() {
				time.Sleep(2 * linger)
				for deadline := time.Now().Add(5 * time.Second); !given() && time.Now().Before(deadline); {
					time.Sleep(linger / 5)
				}
			}
			for i, begin := range tc.steps {
				p.drain(begin)
				if i < len(tc.pause) && tc.pause[i] {
					settle()
				}
			}
			settle()
			if got := r.calls(); !slices.Equal(got, tc.want) {
				t.Errorf("GOMAXPROCS set to %v, want %v", got, tc.want)
			}
			p.mu.Lock()
			lent, active := p.lent, p.active
			p.mu.Unlock()
			if lent != (active > 0) {
				t.Errorf("lent %v with %d rings draining", lent, active)
			}
		})
	}
}
