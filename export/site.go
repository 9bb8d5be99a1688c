package export

import (
	"slices"
	"sort"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// SpanTolerance is the largest hole between two segments of one recorder
// that Spans still joins into one span: two frame intervals at 25 fps, the
// same threshold below which an export reports no gap.
var SpanTolerance = holeTolerance(defaultFrame)

// Spans turns the segments the site holds of one camera (Footage) into
// spans per recording server, clipped to [from, to), and the gaps no live
// server covers. Copies of the same footage on several servers (a mirror,
// a backfilled copy) are one span, listing every holder in HeldBy. It is a
// pure function.
func Spans(held []Held, from, to time.Time) ([]api.Span, []Gap) {
	hs := slices.Clone(held)
	sort.SliceStable(hs, func(i, j int) bool { return hs[i].Start.Before(hs[j].Start) })
	var spans []api.Span
	open := map[string]int{} // recorded_by → index of its last span
	for _, h := range hs {
		if !h.End.After(from) || !h.Start.Before(to) || !h.End.After(h.Start) {
			continue
		}
		if i, ok := open[h.RecordedBy]; ok && !h.Start.After(spans[i].End.Add(SpanTolerance)) {
			sp := &spans[i]
			if h.End.After(sp.End) {
				sp.End = h.End
			}
			if !slices.Contains(sp.HeldBy, h.Server) {
				sp.HeldBy = append(sp.HeldBy, h.Server)
			}
			continue
		}
		open[h.RecordedBy] = len(spans)
		spans = append(spans, api.Span{Start: h.Start, End: h.End, RecordedBy: h.RecordedBy, HeldBy: []string{h.Server}})
	}
	gaps := []Gap{}
	cursor := from
	for i := range spans {
		sp := &spans[i]
		sp.Start, sp.End = maxTime(sp.Start, from).UTC(), minTime(sp.End, to).UTC()
		slices.Sort(sp.HeldBy)
		if sp.Start.Sub(cursor) > SpanTolerance {
			gaps = append(gaps, Gap{Start: cursor.UTC(), End: sp.Start})
		}
		cursor = maxTime(cursor, sp.End)
	}
	if to.Sub(cursor) > SpanTolerance {
		gaps = append(gaps, Gap{Start: cursor.UTC(), End: to.UTC()})
	}
	if spans == nil {
		spans = []api.Span{}
	}
	return spans, gaps
}
