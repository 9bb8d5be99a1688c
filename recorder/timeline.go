package recorder

import "time"

// Limits of a camera clock the recorder follows as it is. Beyond them the
// camera's timestamps are a discontinuity (a clock step, a reboot, a
// replayed buffer): the recorder maps them back onto the server clock.
const (
	// maxStepBack is how far one frame's timestamp may lie before the
	// previous one's: B-frame reordering moves PTS back by a few frames.
	maxStepBack = time.Second
	// maxStepForward is the largest forward step of one frame (a camera
	// may drop frames; it does not pause for longer without the RTSP
	// session noticing).
	maxStepForward = 5 * time.Second
	// maxDrift is how far the camera's clock may run ahead of the
	// server's since the last resync (small forward steps add up here).
	maxDrift = 2 * time.Second
	// maxLate is how far frames may arrive behind the camera's clock: a
	// network stall delays frames without anything wrong with the
	// camera's clock, so only a long lag counts (a longer stall ends the
	// session anyway).
	maxLate = 10 * time.Second
	// Segment cuts at discontinuities are rate-limited per camera: a
	// bucket of cutBurst, refilled one per cutRefill, so a camera whose
	// clock goes wild gets at most a few cuts a minute (after that its
	// timestamps are still remapped, just within the same file).
	cutBurst  = 3
	cutRefill = 20 * time.Second
	// recentPTS is how many recent timestamps are remembered to drop
	// duplicated frames (same timestamp again).
	recentPTS = 8
)

// timeline maps one track's camera timestamps onto a timeline that is
// continuous and follows the server clock. Within the limits above it
// only adds a constant offset, so the camera's own frame timing is kept;
// at a discontinuity it re-anchors the offset so that the frame lands
// where its arrival time says, right after the previous one. The output
// never jumps, so DTS extraction and segment files stay valid, and the
// index (anchored to arrival times) matches the wall clock.
type timeline struct {
	rate int64 // ticks per second

	started   bool
	off       int64 // output = camera + off
	lastOut   int64
	lastArr   time.Time
	lastStep  int64 // last plausible frame step, for placing a frame after a jump
	anchorOut int64
	anchorArr time.Time
	recent    [recentPTS]int64
	nrecent   int

	tokens  float64
	tokenAt time.Time
}

func newTimeline(rate int64) *timeline { return &timeline{rate: rate, tokens: cutBurst} }

func (tl *timeline) ticks(d time.Duration) int64 {
	return int64(d/time.Millisecond) * tl.rate / 1000
}

// place maps pts (camera ticks) of a sample that arrived at arr. dup
// reports a sample whose timestamp was seen just before (a duplicated
// frame, to drop); jump reports a discontinuity, and cut whether the
// rate limit allows cutting the segment for it.
func (tl *timeline) place(pts int64, arr time.Time) (out int64, dup, jump, cut bool) {
	if !tl.started {
		tl.started = true
		tl.lastOut, tl.lastArr = pts, arr
		tl.anchorOut, tl.anchorArr = pts, arr
		tl.lastStep = tl.rate / 25
		tl.remember(pts)
		return pts, false, false, false
	}
	out = pts + tl.off
	for i := range tl.nrecent {
		if tl.recent[i] == out {
			return out, true, false, false
		}
	}
	step := out - tl.lastOut
	drift := (out - tl.anchorOut) - tl.ticks(arr.Sub(tl.anchorArr))
	switch {
	case step < -tl.ticks(maxStepBack) || step > tl.ticks(maxStepForward) ||
		drift > tl.ticks(maxDrift) || drift < -tl.ticks(maxLate):
		jump = true
		// Place the frame after the previous one by the time that
		// passed between them (at least one frame step).
		want := tl.lastOut + max(tl.ticks(arr.Sub(tl.lastArr)), tl.lastStep)
		tl.off += want - out
		out = want
		tl.anchorOut, tl.anchorArr = out, arr
		tl.nrecent = 0
		cut = tl.take(arr)
	case drift > 0 && drift < tl.ticks(100*time.Millisecond):
		// The anchor frame had arrived late: follow the earlier arrival.
		tl.anchorOut, tl.anchorArr = out, arr
	}
	if step > 0 && step < tl.ticks(maxStepBack) && !jump {
		tl.lastStep = step
	}
	tl.lastOut, tl.lastArr = out, arr
	tl.remember(out)
	return out, false, jump, cut
}

func (tl *timeline) remember(v int64) {
	if tl.nrecent < recentPTS {
		tl.recent[tl.nrecent] = v
		tl.nrecent++
		return
	}
	copy(tl.recent[:], tl.recent[1:])
	tl.recent[recentPTS-1] = v
}

// take spends a cut token if one is left.
func (tl *timeline) take(now time.Time) bool {
	if !tl.tokenAt.IsZero() {
		tl.tokens = min(cutBurst, tl.tokens+float64(now.Sub(tl.tokenAt))/float64(cutRefill))
	}
	tl.tokenAt = now
	if tl.tokens < 1 {
		return false
	}
	tl.tokens--
	return true
}
