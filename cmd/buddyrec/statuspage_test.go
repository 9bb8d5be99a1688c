package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/web"
)

// timelineGeom is where a camera's timeline is on the status page, and the
// axis the page says it is drawn on.
type timelineGeom struct {
	Left, Top, Width, Height float64
	FromMs, ToMs             int64
	Range                    string
	Href                     string
	Links                    []string
	Gaps                     int
	Spans                    []struct {
		Left, Width float64
		By          string
	}
}

const timelineGeomJS = `(() => {
  const t = document.querySelector("table.cameras");
  const row = document.querySelector('tr[data-camera="rec-a/cam1"]');
  if (!t || !row) return null;
  const svg = row.querySelector("svg.timeline"), r = svg.getBoundingClientRect();
  return {left: r.left, top: r.top, width: r.width, height: r.height,
    fromMs: Number(t.dataset.fromMs), toMs: Number(t.dataset.toMs), range: t.dataset.range, href: location.href,
    links: [...document.querySelectorAll("a.camlink")].map(a => a.href),
    gaps: row.querySelectorAll("rect.gapmark").length,
    spans: [...row.querySelectorAll("rect.span")].map(s => { const b = s.getBoundingClientRect(); return {left: b.left, width: b.width, by: s.dataset.recordedBy}; })};
})()`

// afterRefresh waits for the status page's own refresh (meta refresh, 5 s)
// to reload it, so what follows has a whole refresh period to act on one
// page, and returns the reloaded page's timeline.
func afterRefresh(ctx context.Context, t *testing.T) timelineGeom {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.beforeRefresh = true`)); err != nil {
		t.Fatal(err)
	}
	var g timelineGeom
	eventually(t, 20*time.Second, func() string {
		gone, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.beforeRefresh === undefined && document.readyState === "complete"`))
		if err != nil || !gone {
			return fmt.Sprintf("the page did not refresh by itself (%v)", err)
		}
		if g, err = chromedp.Run(ctx, chromedp.Evaluate[timelineGeom](timelineGeomJS)); err != nil || g.Width == 0 {
			return fmt.Sprintf("no timeline of rec-a/cam1 after the refresh (%v)", err)
		}
		return ""
	})
	return g
}

// redColumns counts the widest run of screen columns of png showing the
// timeline's gap mark (#ff4d57).
func redColumns(t *testing.T, b []byte) int {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bd := img.Bounds()
	y := (bd.Min.Y + bd.Max.Y) / 2
	best, run := 0, 0
	for x := bd.Min.X; x < bd.Max.X; x++ {
		r, g, bl, _ := img.At(x, y).RGBA()
		if r>>8 > 200 && g>>8 < 120 && bl>>8 > 50 && bl>>8 < 140 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// TestBrowserStatusPage drives a running server's status page in a real
// Chromium as a technician would after a kill -9 failover and the
// failback: every camera links to its view; the 1 h zoom shows the
// failover's seconds-long hole as a visible mark and survives the page's
// refresh and a later visit; a click on the timeline opens the recorded
// view at the time under the pointer, which plays.
func TestBrowserStatusPage(t *testing.T) {
	ctx := testutil.Browser(t, 4*time.Minute)
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}, FailbackAfter: "3s"},
		{Name: "rec-b", Cameras: cams(c, 2, 2), Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	started := time.Now()
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2"), sees(b, "rec-a", "alive"), sees(a, "rec-b", "alive")))
	time.Sleep(20 * time.Second)
	a.Kill()
	eventually(t, 15*time.Second, recordsExactly(b, "rec-a/cam1", "rec-b/cam2"))
	time.Sleep(6 * time.Second)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2"), sees(b, "rec-a", "alive")))
	time.Sleep(12 * time.Second) // rec-a's footage since the failback reaches its index

	var tl web.Timeline
	if err := b.GetJSON(context.Background(), "/api/v1/timeline?scope=site", &tl); err != nil {
		t.Fatal(err)
	}
	for _, sp := range tl.Cameras["rec-a/cam1"] {
		t.Logf("rec-a/cam1 footage: %s – %s by %s", sp.Start.Format("15:04:05.000"), sp.End.Format("15:04:05.000"), sp.RecordedBy)
	}

	// rec-b's page: rec-a/cam1 is the peer's camera, rec-b/cam2 its own
	base := "http://" + b.HTTP
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	g, err := chromedp.Run(ctx, chromedp.Evaluate[timelineGeom](timelineGeomJS))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"rec-a/cam1", "rec-b/cam2"} {
		if want := base + "/view?camera=" + id; !slices.Contains(g.Links, want) {
			t.Errorf("camera links %v lack %s", g.Links, want)
		}
	}

	// the 1 h zoom, kept by the page's refresh
	if err := chromedp.Do(ctx, chromedp.Click(`nav.zoom a[data-range="1h"]`)); err != nil {
		t.Fatal(err)
	}
	g = afterRefresh(ctx, t)
	g = afterRefresh(ctx, t) // the first may have been the zoom's own navigation
	if g.Range != "1h" || g.ToMs-g.FromMs != time.Hour.Milliseconds() || !strings.Contains(g.Href, "range=1h") {
		t.Fatalf("after a refresh: range %q over %d ms at %s, want 1h", g.Range, g.ToMs-g.FromMs, g.Href)
	}
	// the failover's hole: marked, and at least 2 screen pixels wide
	if g.Gaps == 0 {
		t.Errorf("no gap mark on rec-a/cam1's 1 h timeline after a kill -9 failover: %+v", g)
	}
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(`tr[data-camera="rec-a/cam1"] svg.timeline`))
	if err != nil {
		t.Fatal(err)
	}
	testutil.SaveArtifact(t, "status-page-timeline-1h.png", shot)
	if n := redColumns(t, shot); n < 2 {
		t.Errorf("the failover's gap shows %d px wide in the 1 h view, want ≥ 2", n)
	}
	screenshot(ctx, t, "status-page-1h.png")

	// a click on the longest span opens the view at the time under the
	// pointer, on the page's own axis
	g = afterRefresh(ctx, t)
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(`tr[data-camera="rec-a/cam1"] svg.timeline`)); err != nil {
		t.Fatal(err)
	}
	if g, err = chromedp.Run(ctx, chromedp.Evaluate[timelineGeom](timelineGeomJS)); err != nil {
		t.Fatal(err)
	}
	if len(g.Spans) == 0 {
		t.Fatalf("no footage drawn for rec-a/cam1: %+v", g)
	}
	sp := g.Spans[0]
	for _, s := range g.Spans {
		if s.Width > sp.Width {
			sp = s
		}
	}
	x, y := sp.Left+sp.Width/2, g.Top+g.Height/2
	expect := time.UnixMilli(g.FromMs + int64((x-g.Left)/g.Width*float64(g.ToMs-g.FromMs)))
	pixel := time.Duration(float64(time.Duration(g.ToMs-g.FromMs)*time.Millisecond) / g.Width)
	// hovering first shows the time a click would open
	if err := chromedp.Do(ctx, chromedp.MouseEvent(chromedp.MouseMoved, x, y)); err != nil {
		t.Fatal(err)
	}
	type hoverState struct {
		Shown, Want string
		Hidden      bool
	}
	hv, err := chromedp.Run(ctx, chromedp.Evaluate[hoverState](fmt.Sprintf(`(() => { const h = document.getElementById("tl-hover");
		return {shown: h ? h.textContent : "", hidden: !h || h.hidden, want: new Date(%d).toLocaleTimeString()}; })()`, expect.UnixMilli())))
	if err != nil {
		t.Fatal(err)
	}
	if hv.Hidden || hv.Shown == "" {
		t.Errorf("hovering the timeline shows no time: %+v", hv)
	} else {
		t.Logf("hover shows %q (the click's expected time is %q)", hv.Shown, hv.Want)
	}
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(x, y)); err != nil {
		t.Fatal(err)
	}
	var loc string
	eventually(t, 10*time.Second, func() string {
		loc, err = chromedp.Run(ctx, chromedp.Location())
		if err != nil || !strings.Contains(loc, "/view?") {
			return fmt.Sprintf("the click opened no view: at %s (%v)", loc, err)
		}
		return ""
	})
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, u.Query().Get("at"))
	if err != nil || u.Path != "/view" || u.Query().Get("camera") != "rec-a/cam1" {
		t.Fatalf("the click opened %s (%v), want the view of rec-a/cam1 at a time", loc, err)
	}
	// the browser's clientX is whole pixels and at whole seconds: within
	// a pixel and a second, with half a pixel to spare
	if tol := pixel*3/2 + time.Second; at.Sub(expect) < -tol || at.Sub(expect) > tol {
		t.Errorf("at=%s, want %s ± %v (1.5 px + 1 s): the time under the pointer", at.Format(time.RFC3339), expect.UTC().Format(time.RFC3339), tol)
	}
	if at.Before(started) || at.After(time.Now()) {
		t.Errorf("at=%s outside the footage of this test (%s – now)", at, started.UTC().Format(time.RFC3339))
	}
	t.Logf("clicked %s's span at x=%.1f of %.1f px: view at %s (expected %s, 1 px = %v)", sp.By, x-g.Left, g.Width, at.Format(time.RFC3339), expect.UTC().Format(time.RFC3339), pixel)
	st := playsPast(ctx, t, "recorded view opened from the timeline", 2, 30*time.Second)
	if st.Mode != "recorded" || st.Width != 1280 {
		t.Errorf("view opened from the timeline: %+v", st)
	}
	screenshot(ctx, t, "status-page-click-view.png")

	// a later visit to the bare page comes back to the range chosen
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || !strings.Contains(loc, "range=1h") {
			return fmt.Sprintf("the bare page did not return to the 1 h range: %s (%v)", loc, err)
		}
		return ""
	})
}
