package export

import (
	"sort"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

// Timeline tolerances. Consecutive segments of one recorder meet within a
// few milliseconds (a segment's start is the arrival time of its first
// keyframe, its end the start plus the media duration), so small holes and
// overlaps are jitter, not lost or duplicated footage.
const (
	// gapTolerance is the largest hole not reported as a gap; it matches
	// storage.SpanGap so the export agrees with the recordings timeline.
	gapTolerance = storage.SpanGap
	// joinSlack is how far after the cursor a segment may start and still
	// count as continuing the timeline when choosing between servers.
	joinSlack = 100 * time.Millisecond
	// overlapTolerance is how far before the cursor a segment may start and
	// still be played from its beginning (a few repeated frames) instead of
	// from its first keyframe after the cursor.
	overlapTolerance = 500 * time.Millisecond
	// minUseful is the least footage past the cursor that makes a segment
	// worth opening.
	minUseful = 100 * time.Millisecond
)

// Where a piece starts inside its segment file.
const (
	startAtBeginning = iota // the segment's first keyframe
	startBefore             // the last keyframe at or before piece.from
	startAfter              // the first keyframe at or after piece.from
)

// Gap is a stretch of the requested range with no footage in the export.
type Gap struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Reason says why, when it is not simply "nothing recorded", e.g. a
	// codec parameter change that ends the export early.
	Reason string `json:"reason,omitempty"`
}

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

// piece is a planned piece with what the streamer needs.
type piece struct {
	candidate
	mode     int
	from, to time.Time
}

// mergeTimeline chooses, from segments held by this server and its peers,
// a non-overlapping sequence covering [from, to): at each point it
// continues with a segment covering the cursor, preferring local footage,
// then the earliest-starting; footage that overlaps what was already chosen
// (the same camera recorded twice during a partition) is skipped. Holes
// larger than gapTolerance are returned as gaps. It is a pure function.
func mergeTimeline(cands []candidate, from, to time.Time) ([]piece, []Gap) {
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
			if used[i] || !c.seg.End.After(cursor.Add(minUseful)) || c.seg.Start.After(cursor.Add(joinSlack)) {
				continue
			}
			if best < 0 || (c.local() && !cs[best].local()) {
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
		switch {
		case len(pieces) == 0 && c.seg.Start.Before(from):
			p.mode, p.from = startBefore, from
		case len(pieces) > 0 && c.seg.Start.Before(cursor.Add(-overlapTolerance)):
			p.mode, p.from = startAfter, cursor
		}
		gapStart := cursor
		if len(pieces) == 0 {
			gapStart = from
		}
		if c.seg.Start.Sub(gapStart) > gapTolerance {
			gaps = append(gaps, Gap{Start: gapStart, End: c.seg.Start})
		}
		pieces = append(pieces, p)
		cursor = maxTime(cursor, p.to)
	}
	if to.Sub(cursor) > gapTolerance || (len(pieces) == 0 && to.After(from)) {
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
