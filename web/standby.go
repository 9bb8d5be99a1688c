package web

import "strconv"

// homeOnTop orders a camera's timeline rectangles so that the home's own
// recording is drawn over any mirror's or adopter's copy of the same
// moments: the timeline shows the copy an export reads (the home's where
// it has one), and the other recorders only where the home has nothing.
// Rectangles of other recorders that overlap one of the home's go first;
// everything else keeps its order.
func homeOnTop(rects []spanRect, home string) []spanRect {
	x := func(r spanRect) (float64, float64) {
		a, _ := strconv.ParseFloat(r.X, 64)
		w, _ := strconv.ParseFloat(r.W, 64)
		return a, a + w
	}
	under := func(r spanRect) bool {
		if r.By == home {
			return false
		}
		a, b := x(r)
		for _, h := range rects {
			if h.By == home {
				if ha, hb := x(h); ha < b && a < hb {
					return true
				}
			}
		}
		return false
	}
	var first, rest []spanRect
	for _, r := range rects {
		if under(r) {
			first = append(first, r)
		} else {
			rest = append(rest, r)
		}
	}
	return append(first, rest...)
}
