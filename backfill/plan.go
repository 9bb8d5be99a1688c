package backfill

import (
	"cmp"
	"slices"
	"time"

	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/storage"
)

// Listing is what one peer lists of the home's cameras (its segments API).
type Listing struct {
	Peer     string
	Segments []storage.Segment
}

// Copy is one segment to copy: Segment as Peer lists it.
type Copy struct {
	Peer    string
	Segment storage.Segment
}

// Key identifies a segment across servers: the same footage has the same
// camera, recorder and start wherever a copy of it lies.
type Key struct {
	Camera     string
	RecordedBy string
	Start      int64 // unix nanoseconds, to the millisecond (file names keep ms)
}

// KeyOf is the key of a segment.
func KeyOf(s storage.Segment) Key {
	return Key{Camera: s.Camera, RecordedBy: s.RecordedBy, Start: s.Start.Truncate(time.Millisecond).UnixNano()}
}

// Source is one holder of one segment.
type Source struct {
	Peer string
	Key  Key
}

// Inputs is everything the decision of what to copy depends on.
type Inputs struct {
	// Home is this server: only segments of its cameras are copied.
	Home string
	// Own is the home's index, per camera id, over at least the time the
	// listed segments cover.
	Own map[string][]storage.Segment
	// Listings are the peers' segments.
	Listings []Listing
	// Since is the retention horizon: footage ending before it is not
	// copied (the home would delete it at once). Zero: no horizon.
	Since time.Time
	// Avoid lists holders not to copy from now (a copy from there failed
	// recently); another holder of the same segment may still be chosen.
	Avoid map[Source]bool
}

// Covered is how close the home's footage must come to a peer segment's
// ends, and how small a hole inside it may be, for the segment to count as
// held already: two frame intervals at 25 fps, export's own threshold for
// reporting no gap. Mirror copies of footage the home recorded itself are
// therefore never copied, while the footage of an outage always is.
const Covered = 80 * time.Millisecond

// Plan decides what the home should copy from its peers, in the order to
// copy it. It is a pure function of its inputs.
//
// A listed segment is copied when all of these hold:
//   - it is footage of one of the home's cameras (camera id and Home),
//     closed (a segment still being recorded is copied once it is closed)
//     and not empty;
//   - it ends after the retention horizon;
//   - the home holds no segment with its key (a copy made before, or the
//     home's own file);
//   - the home's footage, together with the copies chosen before it, does
//     not already cover it to within Covered: partial overlaps (the
//     make-before-break overlap at failback) are copied whole and export's
//     overlap cutting plays each moment once.
//
// One segment listed by several peers is copied once: from the peer that
// recorded it, else from the first holder by name, skipping holders in
// Avoid. Copies come oldest first (the footage nearest to a peer's own
// retention first), longer first among equal starts, then by camera.
func Plan(in Inputs) []Copy {
	type cand struct {
		seg     storage.Segment
		holders []string
	}
	byKey := map[Key]*cand{}
	var keys []Key
	for _, l := range in.Listings {
		for _, s := range l.Segments {
			id, err := camera.Parse(s.Camera)
			if err != nil || id.Home != in.Home || (s.Home != "" && s.Home != in.Home) {
				continue
			}
			if s.Open || s.Bytes <= 0 || !s.End.After(s.Start) || s.RecordedBy == "" {
				continue
			}
			if !in.Since.IsZero() && !s.End.After(in.Since) {
				continue
			}
			k := KeyOf(s)
			if in.Avoid[Source{Peer: l.Peer, Key: k}] {
				continue
			}
			c := byKey[k]
			if c == nil {
				c = &cand{seg: s}
				byKey[k] = c
				keys = append(keys, k)
			}
			if !slices.Contains(c.holders, l.Peer) {
				c.holders = append(c.holders, l.Peer)
			}
		}
	}
	slices.SortFunc(keys, func(a, b Key) int {
		sa, sb := byKey[a].seg, byKey[b].seg
		return cmp.Or(sa.Start.Compare(sb.Start), sb.End.Compare(sa.End), cmp.Compare(a.Camera, b.Camera), cmp.Compare(a.RecordedBy, b.RecordedBy))
	})

	held := map[string]map[Key]bool{}
	cover := map[string][]span{}
	for cam, segs := range in.Own {
		held[cam] = map[Key]bool{}
		for _, s := range segs {
			held[cam][KeyOf(s)] = true
			cover[cam] = append(cover[cam], span{s.Start, s.End})
		}
	}
	var out []Copy
	for _, k := range keys {
		c := byKey[k]
		if held[k.Camera][k] || covers(cover[k.Camera], c.seg.Start, c.seg.End) {
			continue
		}
		slices.Sort(c.holders)
		from := c.holders[0]
		if slices.Contains(c.holders, c.seg.RecordedBy) {
			from = c.seg.RecordedBy
		}
		out = append(out, Copy{Peer: from, Segment: c.seg})
		cover[k.Camera] = append(cover[k.Camera], span{c.seg.Start, c.seg.End})
	}
	return out
}

type span struct{ start, end time.Time }

// covers reports whether the union of spans covers [from, to) with no
// hole longer than Covered, and comes within Covered of both ends.
func covers(spans []span, from, to time.Time) bool {
	ss := slices.Clone(spans)
	slices.SortFunc(ss, func(a, b span) int { return a.start.Compare(b.start) })
	cursor := from
	for _, s := range ss {
		if !s.end.After(cursor) {
			continue
		}
		if s.start.Sub(cursor) > Covered {
			return false
		}
		cursor = s.end
		if to.Sub(cursor) <= Covered {
			return true
		}
	}
	return to.Sub(cursor) <= Covered
}
