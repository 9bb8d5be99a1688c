package web

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// The status page's timelines: one SVG per camera over the chosen zoom's
// window, ending now.
//
// Invariants:
//   - The axis is linear: x = (t - from) / (to - from) × tlWidth, and the
//     page carries from and to (data-from-ms, data-to-ms), so a click at a
//     fraction f of a timeline's width is the time from + f × (to - from) on
//     the axis the server drew, whatever the browser's clock says.
//   - A gap in a camera's footage of MinGap or more between footage is never
//     hidden: it gets a gap mark drawn over the spans, at least a couple of
//     screen pixels wide however narrow its share of the window (a failover
//     of seconds in the 1 h view). Spans are merged for drawing only when
//     their gap would not show anyway; the marks keep the truth.

// Zoom is a window of the status page's timelines, chosen with ?range=.
type Zoom struct {
	// Name is the value of the range parameter: "1h", "24h", "7d".
	Name string
	// Window is how much history the timelines show, ending now.
	Window time.Duration
	// Label is how the page names it: "1 h", "7 d".
	Label string
}

// Zooms are the windows the page offers, narrowest first: 1 h shows a
// failover of seconds, 24 h a day's outages, 7 d a week's pattern.
var Zooms = []Zoom{{"1h", time.Hour, "1 h"}, {"24h", 24 * time.Hour, "24 h"}, {"7d", 7 * 24 * time.Hour, "7 d"}}

// zoomOf is the zoom the range parameter names; an empty one is def
// (Options.Window), which need not be one of Zooms.
func zoomOf(param string, def time.Duration) (Zoom, error) {
	if param == "" {
		for _, z := range Zooms {
			if z.Window == def {
				return z, nil
			}
		}
		return Zoom{Name: "", Window: def, Label: fmtDur(def)}, nil
	}
	names := make([]string, len(Zooms))
	for i, z := range Zooms {
		if z.Name == param {
			return z, nil
		}
		names[i] = z.Name
	}
	return Zoom{}, fmt.Errorf("range: %s is not a timeline range (%s)", quoteParam(param), strings.Join(names, ", "))
}

func quoteParam(v string) string {
	if len(v) > 20 {
		v = v[:20] + "…"
	}
	return fmt.Sprintf("%q", v)
}

// MinGap is the shortest hole in a camera's footage the timeline marks.
// Every hole the timeline sees is footage lost: storage already joins one
// recorder's segments across storage.SpanGap, and a hand-over between two
// live recorders overlaps (make before break), so a hole between two
// recorders is a crash failover — detection alone takes most of a second.
// Shorter than this is the frame timing of two recorders.
const MinGap = 100 * time.Millisecond

// timeline geometry in SVG user units; the SVG stretches to its cell.
const (
	tlWidth  = 1000.0
	tlHeight = 14.0
	// markMerge is how close (in units) a hole may be to the previous gap
	// mark to be drawn as part of it: marks closer than that would overlap
	// on screen anyway, and this bounds a flapping camera's marks to about
	// tlWidth per timeline.
	markMerge = 1.0
)

type spanRect struct {
	X, W, Color, By, Title string
	// View opens the camera's view at the span's start: what a click on
	// the span does where the page's script does not run.
	View string
}

// gapMark is a hole in a camera's footage, drawn over the spans.
type gapMark struct {
	X, W, Title string
}

// timelineOf lays spans out over [from, to): rectangles per recorder, gap
// marks for the holes between footage, and the share of the window covered.
// view is the camera's view page ("" for a camera no view can show).
func timelineOf(spans []api.Span, from, to time.Time, colors colorMap, view string) ([]spanRect, []gapMark, string) {
	total := to.Sub(from)
	if total <= 0 || len(spans) == 0 {
		return nil, nil, "0 %"
	}
	ss := make([]api.Span, 0, len(spans))
	for _, s := range spans {
		if s.End.After(from) && s.Start.Before(to) && s.End.After(s.Start) {
			if s.Start.Before(from) {
				s.Start = from
			}
			if s.End.After(to) {
				s.End = to
			}
			ss = append(ss, s)
		}
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
	xOf := func(t time.Time) float64 { return float64(t.Sub(from)) / float64(total) * tlWidth }

	// Coverage and holes from the union of every recorder's footage: two
	// recorders at once (make before break) count once and leave no hole.
	var covered time.Duration
	var marks []gapMark
	var lastMark struct {
		start, end time.Time
		gaps       int
		lost       time.Duration
	}
	flush := func() {
		if lastMark.gaps == 0 {
			return
		}
		title := fmt.Sprintf("no footage %s – %s (%s)", clock(lastMark.start, total), clock(lastMark.end, total), roundDur(lastMark.lost))
		if lastMark.gaps > 1 {
			title = fmt.Sprintf("%d gaps in footage between %s and %s (%s in all)", lastMark.gaps, clock(lastMark.start, total), clock(lastMark.end, total), roundDur(lastMark.lost))
		}
		x := xOf(lastMark.start)
		marks = append(marks, gapMark{X: fmt.Sprintf("%.2f", x), W: fmt.Sprintf("%.2f", xOf(lastMark.end)-x), Title: title})
		lastMark.gaps, lastMark.lost = 0, 0
	}
	var end time.Time
	for i, s := range ss {
		if i > 0 && s.Start.Sub(end) >= MinGap {
			if lastMark.gaps > 0 && xOf(s.Start)-xOf(lastMark.end) > markMerge {
				flush()
			}
			if lastMark.gaps == 0 {
				lastMark.start = end
			}
			lastMark.end = s.Start
			lastMark.gaps++
			lastMark.lost += s.Start.Sub(end)
		}
		st := s.Start
		if st.Before(end) {
			st = end
		}
		if s.End.After(st) {
			covered += s.End.Sub(st)
			end = s.End
		}
	}
	flush()

	// Rectangles: a recorder's spans closer than half a unit are drawn as
	// one (the page stays small with thousands of segments); the gap marks
	// above still show every hole between them.
	unit := total / time.Duration(tlWidth)
	var merged []api.Span
	for _, s := range ss {
		if n := len(merged); n > 0 && merged[n-1].RecordedBy == s.RecordedBy && s.Start.Sub(merged[n-1].End) < unit/2 {
			if s.End.After(merged[n-1].End) {
				merged[n-1].End = s.End
			}
			continue
		}
		merged = append(merged, s)
	}
	out := make([]spanRect, 0, len(merged))
	for _, s := range merged {
		x := xOf(s.Start)
		w := max(xOf(s.End)-x, 0.5) // a second of footage in a week still shows
		r := spanRect{
			X: fmt.Sprintf("%.2f", x), W: fmt.Sprintf("%.2f", w),
			Color: colors.of(s.RecordedBy), By: s.RecordedBy,
			Title: fmt.Sprintf("%s recorded %s – %s", s.RecordedBy, s.Start.Local().Format("Jan 2 15:04:05"), s.End.Local().Format("15:04:05")),
		}
		if view != "" {
			r.View = view + "&at=" + s.Start.UTC().Format(time.RFC3339)
		}
		out = append(out, r)
	}
	return out, marks, fmt.Sprintf("%.0f %%", float64(covered)/float64(total)*100)
}

// clock formats t for a title: with the date in windows longer than a day.
func clock(t time.Time, window time.Duration) string {
	if window > 24*time.Hour {
		return t.Local().Format("Jan 2 15:04:05")
	}
	return t.Local().Format("15:04:05")
}

// roundDur is a hole's length as a technician reads it: "5s", "2m10s".
func roundDur(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// viewURL is the view page of camera id, live; the timeline adds &at=.
func viewURL(id string) string {
	// a slash is fine in a query and keeps "rec-a/door" readable
	return "/view?camera=" + strings.ReplaceAll(url.QueryEscape(id), "%2F", "/")
}

// tickSteps are the axis's tick intervals, finest first; the finest that
// gives at most 8 ticks is used.
var tickSteps = []time.Duration{
	5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

type tick struct{ X, Label string }

// ticks marks the axis at round local times (x in percent of the width,
// so labels are not stretched): every 10 min for an hour, 4 h for a day,
// midnight for a week.
func ticks(from, to time.Time, loc *time.Location) []tick {
	total := to.Sub(from)
	if total <= 0 {
		return nil
	}
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if total/s <= 8 {
			step = s
			break
		}
	}
	lf := from.In(loc)
	var t time.Time
	next := func(t time.Time) time.Time { return t.Add(step) }
	layout := "15:04"
	if step >= 24*time.Hour {
		t = time.Date(lf.Year(), lf.Month(), lf.Day(), 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, int(step/(24*time.Hour))) } // midnight across DST
		layout = "Jan 2"
	} else {
		t = time.Date(lf.Year(), lf.Month(), lf.Day(), lf.Hour(), 0, 0, 0, loc)
		if h := int(step / time.Hour); h > 1 {
			t = t.Add(-time.Duration(lf.Hour()%h) * time.Hour) // 0:00, 4:00, 8:00...
		}
	}
	for !t.After(from) {
		t = next(t)
	}
	var out []tick
	for ; t.Before(to); t = next(t) {
		x := float64(t.Sub(from)) / float64(total) * 100
		out = append(out, tick{X: fmt.Sprintf("%.2f", x), Label: t.Format(layout)})
	}
	return out
}
