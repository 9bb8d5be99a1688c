package web

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestChromiumRendersPage loads the page in a real headless Chromium, with
// JavaScript left as the browser has it and no network but loopback, and
// checks what a technician would see. The screenshot is kept as an artefact.
func TestChromiumRendersPage(t *testing.T) {
	chromium := testutil.NeedTool(t, "chromium")
	// The browser cannot answer a Basic prompt from the command line, so the
	// page is served open, as on a loopback-only server.
	peer := serveNode(t, siteB(), newTestAuth(t, AuthOptions{}), Options{})
	src := siteA(strings.TrimPrefix(peer.URL, "http://"))
	srv := serveNode(t, src, newTestAuth(t, AuthOptions{}), Options{})

	dom := string(testutil.Chromium(t, chromium, "--dump-dom", srv.URL+"/"))
	for _, want := range []string{
		`data-server="rec-c" data-state="DEAD"`,
		`<span class="state dead">DEAD</span>`,
		"own + adopted from rec-c",
		`data-camera="rec-c/door"`, "adopted from rec-c",
		`data-camera="rec-b/yard"`, // fetched from the peer
		"rec-c stopped answering gossip", `action="/ack"`, "1 unacknowledged alarm",
		`data-recorded-by="rec-b"`,
		// Cameras of the dead rec-c nobody can record, in red.
		`<tr class="camera st-unrecorded" data-camera="rec-c/gate">`,
		`<tr class="camera st-unrecorded" data-camera="rec-c/shed">`,
		"not recorded — no live buddy with capacity", "2 cameras not recorded",
		// Every camera opens its view, the dead server's included; the
		// timelines carry it for the click script, which the page loads.
		`<a class="camlink" href="/view?camera=rec-c/door"`, `<a class="camlink" href="/view?camera=rec-c/gate"`,
		`data-view="/view?camera=rec-b/yard"`, `<script src="/static/page.js" defer="">`,
		`<th>Codec</th>`, ">H.265</td>",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, camPassword) {
		t.Error("rendered DOM contains the camera password")
	}

	testutil.Screenshot(t, chromium, srv.URL+"/", "status-page.png")
}

// TestChromiumTimelineClick clicks a timeline in a real Chromium, with the
// page's script and without. The server's clock is a year off the
// browser's (testNow), so a time right from the script proves it reads the
// page's axis, not the browser's clock; without the script the span's link
// opens the view at the span's start.
func TestChromiumTimelineClick(t *testing.T) {
	ctx := testutil.Browser(t, 2*time.Minute)
	peer := serveNode(t, siteB(), newTestAuth(t, AuthOptions{}), Options{})
	srv := serveNode(t, siteA(strings.TrimPrefix(peer.URL, "http://")), newTestAuth(t, AuthOptions{}), Options{})

	// rec-a/lobby's last span: rec-a from 6 h ago to now, on a 24 h axis
	click := func() (at time.Time, frac float64) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?range=24h")); err != nil {
			t.Fatal(err)
		}
		type geom struct{ SvgLeft, SvgWidth, Left, Width, Top, Height float64 }
		g, err := chromedp.Run(ctx, chromedp.Evaluate[geom](`(() => {
			const row = document.querySelector('tr[data-camera="rec-a/lobby"]'), svg = row.querySelector("svg.timeline");
			const rs = [...row.querySelectorAll('rect.span[data-recorded-by="rec-a"]')], r = rs[rs.length - 1].getBoundingClientRect(), s = svg.getBoundingClientRect();
			return {svgLeft: s.left, svgWidth: s.width, left: r.left, width: r.width, top: r.top, height: r.height}; })()`))
		if err != nil {
			t.Fatal(err)
		}
		x := g.Left + g.Width/2
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(x, g.Top+g.Height/2)); err != nil {
			t.Fatal(err)
		}
		var loc string
		testutil.EventuallyMsg(t, 10*time.Second, func() string {
			if loc, err = chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "/view?") {
				return "the click opened no view: " + loc
			}
			return ""
		})
		u, _ := url.Parse(loc)
		if u.Query().Get("camera") != "rec-a/lobby" {
			t.Fatalf("the click opened %s, want the view of rec-a/lobby", loc)
		}
		at, err = time.Parse(time.RFC3339, u.Query().Get("at"))
		if err != nil {
			t.Fatalf("the click opened %s: %v", loc, err)
		}
		return at, (x - g.SvgLeft) / g.SvgWidth
	}

	at, frac := click()
	from := testNow.Add(-24 * time.Hour)
	want := from.Add(time.Duration(frac * float64(24*time.Hour)))
	pixel := 24 * time.Hour / 500 // the timeline is over 500 px wide at 1280
	if d := at.Sub(want); d < -pixel || d > pixel {
		t.Errorf("with the script: at=%s, want %s (the time under the pointer on the page's axis)", at.Format(time.RFC3339), want.Format(time.RFC3339))
	}

	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	t.Logf("with the script: clicked at %.3f of the width, view at %s", frac, at.Format(time.RFC3339))
	at, _ = click()
	t.Logf("without the script: view at %s", at.Format(time.RFC3339))
	if want := testNow.Add(-6 * time.Hour); !at.Equal(want) {
		t.Errorf("without the script: at=%s, want the span's start %s", at.Format(time.RFC3339), want.Format(time.RFC3339))
	}
}
