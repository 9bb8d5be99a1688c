package node

import (
	"context"
	"fmt"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
)

// readyWait bounds how long readiness waits for the assigned cameras to
// record: a camera that is unplugged must not hold the service in
// "activating" until the service manager's start timeout kills it.
const readyWait = 15 * time.Second

// awaitReady calls ready once this server has planned (after settling) and
// started the pipelines of every camera the plan gives it, and each of them
// records or has failed to (offline), or readyWait has passed. The status
// says how many cameras record, for `systemctl status`.
func (n *Node) awaitReady(ctx context.Context, ready func(status string)) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var planned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n.mu.Lock()
		hasPlan := n.seen.ctl.Plan.Owner != nil
		assigned := sortedKeys(n.seen.ctl.Assigned)
		n.mu.Unlock()
		if !hasPlan {
			continue
		}
		if planned.IsZero() {
			planned = time.Now()
		}
		states := map[string]string{}
		for _, s := range n.rec.Status() {
			states[s.ID] = s.State
		}
		recording, pending := 0, 0
		for _, id := range assigned {
			switch states[id] {
			case recorder.StateRecording:
				recording++
			case recorder.StateOffline:
			default: // connecting, or the pipeline not started yet
				pending++
			}
		}
		if pending > 0 && time.Since(planned) < readyWait {
			continue
		}
		status := fmt.Sprintf("recording %d of %d camera(s)", recording, len(assigned))
		if pending > 0 {
			status += fmt.Sprintf(", %d still connecting", pending)
		}
		ready(status)
		return
	}
}
