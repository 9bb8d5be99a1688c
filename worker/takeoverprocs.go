package worker

import (
	"sync"
	"time"
)

// takeoverProcs lends a worker a second P while its hot standbys write
// their rings (recorder.ManagerOptions.OnRingDrain).
//
// A worker runs one P (see RunWorker). A takeover wakes every hot standby
// writer of the worker at once, and on one P they write their rings one
// after another: about 2.7 ms each at 2 Mbit/s, so the twentieth camera
// began recording 51 ms after the first (a worker's log, bench failover
// -standby hot -cameras 20). With a second P one writer runs while
// another waits in its write system call, and all twenty began within
// 10 ms.
//
// The P is given back linger after the last ring was written, not at
// once: runtime.GOMAXPROCS stops the world, and writers that finish one
// by one would otherwise change it once per camera.
//
// Invariants: lent is true exactly while the worker runs procs Ps; it is
// true whenever active > 0; a restore only happens when active is 0 and
// no ring began since it was scheduled (gen).
type takeoverProcs struct {
	set    func(int) int // runtime.GOMAXPROCS
	procs  int           // Ps while rings drain
	linger time.Duration // how long the Ps stay lent after the last drain

	mu     sync.Mutex
	active int    // rings being written
	lent   bool   // the worker runs procs Ps
	prev   int    // the Ps to give back to
	gen    uint64 // counts drains begun: a restore scheduled before one is stale
	timer  *time.Timer
}

// drain is recorder.ManagerOptions.OnRingDrain.
func (t *takeoverProcs) drain(begin bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if begin {
		t.active++
		t.gen++
		if !t.lent {
			t.prev = t.set(t.procs)
			t.lent = true
		}
		return
	}
	if t.active == 0 {
		return // unpaired: nothing to end
	}
	if t.active--; t.active > 0 {
		return
	}
	gen := t.gen
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(t.linger, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.active == 0 && t.gen == gen && t.lent {
			t.set(t.prev)
			t.lent = false
		}
	})
}
