package node

import (
	"time"

	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/recorder"
)

// runStart is the first durable frame of one pipeline run, once found.
type runStart struct {
	started time.Time // recorder.Status.Started of the run
	from    time.Time
}

// runFootage reads from the index what each pipeline's current run has
// made durable: the make-before-break input (control.Footage). The first
// frame of a run never changes, so it is looked up until found and then
// kept; the end is read only for the cameras being handed over, the ones
// whose stop waits for it. What the index holds is what a crash keeps, so
// a handover never counts footage that is still in memory.
func (n *Node) runFootage(statuses []recorder.Status) map[string]control.Footage {
	out := map[string]control.Footage{}
	runs := make(map[string]runStart, len(statuses))
	for _, s := range statuses {
		if s.Started.IsZero() {
			continue
		}
		r := n.runs[s.ID]
		if !r.started.Equal(s.Started) {
			r = runStart{started: s.Started}
		}
		_, releasing := n.ctl.Releasing[s.ID]
		if r.from.IsZero() || releasing {
			from, to := n.durableSince(s.ID, s.Started)
			if r.from.IsZero() {
				r.from = from
			}
			if !r.from.IsZero() {
				out[s.ID] = control.Footage{From: r.from, To: to}
			}
		} else {
			out[s.ID] = control.Footage{From: r.from}
		}
		runs[s.ID] = r
	}
	n.runs = runs
	return out
}

// durableSince returns the span of this server's indexed footage of camera
// id that starts at or after since (a pipeline's start): its first frame
// and the end of its last durable part; zero times when there is none.
func (n *Node) durableSince(id string, since time.Time) (from, to time.Time) {
	since = since.Truncate(time.Millisecond) // segment starts are whole milliseconds
	segs, err := n.store.Segments(id, since, since.Add(100*365*24*time.Hour))
	if err != nil {
		n.log.Warn("read the index for a handover", "camera", id, "err", err)
		return time.Time{}, time.Time{}
	}
	for _, s := range segs {
		if s.RecordedBy != n.cfg.Name || s.Start.Before(since) || !s.End.After(s.Start) {
			continue
		}
		if from.IsZero() || s.Start.Before(from) {
			from = s.Start
		}
		if s.End.After(to) {
			to = s.End
		}
	}
	return from, to
}
