package export

import (
	"sort"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/storage"
)

// Timeline tolerances.
const (
	// defaultFrame is the frame interval assumed when a segment's first
	// fragment cannot be read for it (25 fps).
	defaultFrame = 40 * time.Millisecond
	// minUseful is the least footage past the cursor that makes a segment
	// worth opening.
	minUseful = 20 * time.Millisecond
)

// holeTolerance is the largest hole (or overlap) between two pieces that
// is clock jitter rather than lost (or repeated) footage: two frame
// intervals. Consecutive segments of one recorder session meet within a
// frame (a segment's end is its start plus the media duration, and the
// next one starts there, moved towards its keyframe's arrival by at most
// a frame later or half a frame earlier: storage's continueAt), while a reconnect, a failover or a
// make-before-break overlap is many frames long.
func holeTolerance(frame time.Duration) time.Duration {
	if frame <= 0 {
		frame = defaultFrame
	}
	return 2 * min(frame, time.Second)
}

// Where a piece starts inside its segment file.
const (
	startAtBeginning = iota // the segment's first keyframe
	startBefore             // the last keyframe at or before piece.from
)

// Gap is a stretch of the requested range with no footage in the export.
type Gap = api.Gap

// Piece is one stretch of an export, read from one segment file held by
// Server. Times are the index's; the stream starts at a keyframe near Start.
type Piece struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Server     string    `json:"server"`
	RecordedBy string    `json:"recorded_by"`
	// SegmentStart identifies the segment file on Server.
	SegmentStart time.Time `json:"segment_start"`
}

// Plan is the body of GET /api/v1/export/plan: what an export of the same
// range will contain.
type Plan struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Pieces []Piece   `json:"pieces"`
	Gaps   []Gap     `json:"gaps"`
	// Warnings lists peers that could not be asked; footage they hold is
	// missing from the export (and shows up as gaps).
	Warnings []string `json:"warnings,omitempty"`
}

// candidate is a segment some server holds.
type candidate struct {
	seg    storage.Segment
	server string // holder; "" for this server
	peer   Peer
}

func (c *candidate) local() bool { return c.server == "" }

// homeCopy reports whether the home recorded the segment itself: the
// copy an export prefers over a buddy's (a mirror, an adopted stretch).
func (c *candidate) homeCopy() bool { return c.seg.RecordedBy == c.seg.Home }

// better reports whether c is preferred over d when both cover the
// cursor: the home's own recording first, then local footage.
func (c *candidate) better(d *candidate) bool {
	if c.homeCopy() != d.homeCopy() {
		return c.homeCopy()
	}
	return c.local() && !d.local()
}

// piece is a planned piece with what the streamer needs.
type piece struct {
	candidate
	mode     int
	from, to time.Time
	// afterGap is set when a reported gap precedes the piece: its footage
	// goes where its wall clock says, so the hole stays a hole in the
	// file. Otherwise it continues the previous piece without a jump.
	afterGap bool
}

// mergeTimeline chooses, from segments held by this server and its peers,
// a sequence of pieces covering [from, to): at each point it continues with
// a segment covering the cursor, preferring the home's own recording (over
// a mirror or an adopter's), then local footage, then the earliest-starting.
// A piece from another recorder ends where a segment the home recorded
// begins, so the export returns to the home's copy as soon as it has one. A segment that begins more than tol before the cursor
// (the same camera recorded twice: a make-before-break handover or a
// partition) starts at its last keyframe at or before the cursor; plan then
// cuts the previous piece at that keyframe, so no moment is played twice.
// Holes longer than tol are returned as gaps. It is a pure function.
func mergeTimeline(cands []candidate, from, to time.Time, tol time.Duration) ([]piece, []Gap) {
	cs := make([]candidate, 0, len(cands))
	for _, c := range cands {
		if c.seg.End.After(from) && c.seg.Start.Before(to) && c.seg.End.After(c.seg.Start) {
			cs = append(cs, c)
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].seg.Start.Equal(cs[j].seg.Start) {
			return cs[i].seg.Start.Before(cs[j].seg.Start)
		}
		return cs[i].local() && !cs[j].local()
	})
	used := make([]bool, len(cs))
	var pieces []piece
	var gaps []Gap
	cursor := from
	for cursor.Before(to) {
		best := -1
		for i, c := range cs {
			if used[i] || !c.seg.End.After(cursor.Add(minUseful)) || c.seg.Start.After(cursor.Add(tol)) {
				continue
			}
			if best < 0 || cs[i].better(&cs[best]) {
				best = i // cs is sorted by start, so the first found is the earliest
			}
		}
		if best < 0 { // nothing covers the cursor: jump to the next footage
			for i, c := range cs {
				if used[i] || !c.seg.End.After(cursor.Add(minUseful)) {
					continue
				}
				if best < 0 || c.seg.Start.Before(cs[best].seg.Start) {
					best = i
				}
			}
			if best < 0 {
				break
			}
		}
		used[best] = true
		c := cs[best]
		p := piece{candidate: c, mode: startAtBeginning, from: c.seg.Start, to: minTime(c.seg.End, to)}
		if !c.homeCopy() {
			// Up to the home's next segment, overlapping it by tol: the
			// plan then ends this piece right before its own copy of the
			// home's first keyframe (the two recorders date it a few
			// milliseconds apart), so no frame plays twice.
			for i, h := range cs {
				if end := h.seg.Start.Add(tol); !used[i] && h.homeCopy() && h.seg.Start.After(cursor.Add(tol)) && end.Before(p.to) {
					p.to = end
				}
			}
		}
		switch {
		case len(pieces) == 0 && c.seg.Start.Before(from):
			p.mode, p.from = startBefore, from
		case len(pieces) > 0 && c.seg.Start.Before(cursor.Add(-tol)):
			p.mode, p.from = startBefore, cursor
		}
		gapStart := cursor
		if c.seg.Start.Sub(gapStart) > tol {
			gaps = append(gaps, Gap{Start: gapStart, End: c.seg.Start})
			p.afterGap = len(pieces) > 0
		}
		pieces = append(pieces, p)
		cursor = maxTime(cursor, p.to)
	}
	if to.Sub(cursor) > tol || (len(pieces) == 0 && to.After(from)) {
		gaps = append(gaps, Gap{Start: cursor, End: to})
	}
	return pieces, gaps
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
