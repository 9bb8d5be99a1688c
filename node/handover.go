package node

import (
	"sort"
	"time"

	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// runStart is what runFootage knows of one pipeline run.
type runStart struct {
	started time.Time // recorder.Status.Started of the run
	since   time.Time // recorder.Status.Since when from was found
	from    time.Time
}

// joinTolerance is the largest hole between two of this server's segments
// of a camera that still counts as one continuous stretch: segments of one
// session meet within milliseconds; a reconnect leaves a second or more.
const joinTolerance = 100 * time.Millisecond

// runFootage reads from the index what each pipeline's current run has
// made durable: the make-before-break input (control.Footage). From is
// the first frame of the footage that runs without a hole up to the
// newest durable part; it changes only when the pipeline's state does (a
// reconnect can leave a hole), so it is looked up again only then. To is
// read only for the cameras being handed over, whose stop waits for it.
// What the index holds is what a crash keeps, so a handover never counts
// footage that is still in memory.
func (n *Node) runFootage(statuses []recorder.Status) map[string]control.Footage {
	out := make(map[string]control.Footage, len(statuses))
	runs := make(map[string]runStart, len(statuses))
	for _, s := range statuses {
		if s.Started.IsZero() {
			continue
		}
		r := n.runs[s.ID]
		if !r.started.Equal(s.Started) || !r.since.Equal(s.Since) {
			r = runStart{started: s.Started, since: s.Since}
		}
		_, releasing := n.ctl.Releasing[s.ID]
		if r.from.IsZero() || releasing {
			from, to := n.durableRun(s.ID, s.Started)
			if r.from.IsZero() || from.After(r.from) {
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

// durableRun returns the stretch of this server's indexed footage of
// camera id since a pipeline's start that ends at the newest durable
// part and has no hole: its first frame and its end; zero times when
// there is none.
func (n *Node) durableRun(id string, since time.Time) (from, to time.Time) {
	since = since.Truncate(time.Millisecond) // segment starts are whole milliseconds
	segs, err := n.store.Segments(id, since, since.Add(100*365*24*time.Hour))
	if err != nil {
		n.log.Warn("read the index for a handover", "camera", id, "err", err)
		return time.Time{}, time.Time{}
	}
	var mine []storage.Segment
	for _, s := range segs {
		if s.RecordedBy == n.cfg.Name && !s.Start.Before(since) && s.End.After(s.Start) {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return time.Time{}, time.Time{}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Start.Before(mine[j].Start) })
	from, to = mine[len(mine)-1].Start, mine[len(mine)-1].End
	for i := len(mine) - 2; i >= 0; i-- {
		if mine[i].End.Add(joinTolerance).Before(from) {
			break // a hole: the run's current stretch starts after it
		}
		from = mine[i].Start
		if mine[i].End.After(to) {
			to = mine[i].End
		}
	}
	return from, to
}
