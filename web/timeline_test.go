package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

func TestZoomOf(t *testing.T) {
	for _, c := range []struct {
		param string
		def   time.Duration
		want  Zoom
		err   string
	}{
		{"", 24 * time.Hour, Zoom{"24h", 24 * time.Hour, "24 h"}, ""},
		{"", time.Hour, Zoom{"1h", time.Hour, "1 h"}, ""},
		{"", 2 * time.Hour, Zoom{"", 2 * time.Hour, "2 h"}, ""}, // a configured window that is not a zoom
		{"1h", 24 * time.Hour, Zoom{"1h", time.Hour, "1 h"}, ""},
		{"24h", time.Hour, Zoom{"24h", 24 * time.Hour, "24 h"}, ""},
		{"7d", 24 * time.Hour, Zoom{"7d", 7 * 24 * time.Hour, "7 d"}, ""},
		{"2h", 24 * time.Hour, Zoom{}, `range: "2h" is not a timeline range (1h, 24h, 7d)`},
		{"1H", 24 * time.Hour, Zoom{}, `range: "1H" is not`},
		{strings.Repeat("x", 100), 24 * time.Hour, Zoom{}, `range: "xxxxxxxxxxxxxxxxxxxx…" is not`},
	} {
		got, err := zoomOf(c.param, c.def)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("zoomOf(%q): %v, want error %q", c.param, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("zoomOf(%q, %v) = %+v, %v; want %+v", c.param, c.def, got, err, c.want)
		}
	}
}

func TestViewURL(t *testing.T) {
	for id, want := range map[string]string{
		"rec-a/door":     "/view?camera=rec-a/door",
		"rec-a/gate 2":   "/view?camera=rec-a/gate+2",
		"rec-a/a&at=now": "/view?camera=rec-a/a%26at%3Dnow",
	} {
		if got := viewURL(id); got != want {
			t.Errorf("viewURL(%q) = %q, want %q", id, got, want)
		}
		u, err := url.Parse(viewURL(id))
		if err != nil || u.Query().Get("camera") != id {
			t.Errorf("viewURL(%q) does not carry the id back: %v %v", id, u, err)
		}
	}
}

func TestCodecText(t *testing.T) {
	for _, c := range []struct{ in, text, class string }{
		{"H264", "H.264", ""},
		{"H264+AAC", "H.264 + AAC", ""},
		{"H265", "H.265", "codec-h265"},
		{"H265+AAC", "H.265 + AAC", "codec-h265"},
		{"", "—", ""},
	} {
		if text, class := codecText(c.in); text != c.text || class != c.class {
			t.Errorf("codecText(%q) = %q, %q; want %q, %q", c.in, text, class, c.text, c.class)
		}
	}
}

// TestTimelineGaps: every hole of MinGap or more between footage gets a
// mark, whatever the zoom; overlaps (make before break), frame timing
// hand-overs and the open ends of the window get none; a flapping camera's
// marks stay few.
func TestTimelineGaps(t *testing.T) {
	to := testNow
	at := func(ago time.Duration) time.Time { return to.Add(-ago) }
	sp := func(by string, from, until time.Time) api.Span {
		return api.Span{Start: from, End: until, RecordedBy: by}
	}
	m, s := time.Minute, time.Second
	flapping := func() []api.Span {
		var out []api.Span
		for i := 0; i < 100; i++ { // 8 s of footage, 2 s lost, 100 times, 30 min ago
			st := at(30 * m).Add(time.Duration(i) * 10 * s)
			out = append(out, sp("rec-a", st, st.Add(8*s)))
		}
		return out
	}
	type mark struct{ x, w float64 }
	for _, c := range []struct {
		name   string
		window time.Duration
		spans  []api.Span
		rects  int
		marks  []mark
		title  string // of the first mark
		cover  string
	}{
		{"failover of 5 s in the 1 h view", time.Hour,
			[]api.Span{sp("rec-a", at(50*m), at(20*m)), sp("rec-b", at(20*m).Add(5*s), to)},
			2, []mark{{666.67, 1.39}}, "(5s)", "83 %"},
		{"the same in the 24 h view: still marked", 24 * time.Hour,
			[]api.Span{sp("rec-a", at(50*m), at(20*m)), sp("rec-b", at(20*m).Add(5*s), to)},
			2, []mark{{986.11, 0.06}}, "(5s)", "3 %"},
		{"make before break: overlap, no hole", time.Hour,
			[]api.Span{sp("rec-a", at(50*m), at(20*m).Add(2*s)), sp("rec-b", at(20*m), to)},
			2, nil, "", "83 %"},
		{"a kill -9 failover of 0.9 s is marked", time.Hour,
			[]api.Span{sp("rec-a", at(50*m), at(20*m)), sp("rec-b", at(20*m).Add(900*time.Millisecond), to)},
			2, []mark{{666.67, 0.25}}, "(900ms)", "83 %"},
		{"frame timing of two recorders is no gap", time.Hour,
			[]api.Span{sp("rec-a", at(50*m), at(20*m)), sp("rec-b", at(20*m).Add(40*time.Millisecond), to)},
			2, nil, "", "83 %"},
		{"one recorder, 3 s offline in the 7 d view: one rectangle, still a mark", 7 * 24 * time.Hour,
			[]api.Span{sp("rec-a", at(5*time.Hour), at(time.Hour)), sp("rec-a", at(time.Hour).Add(3*s), to)},
			1, []mark{{994.05, 0.005}}, "(3s)", "3 %"},
		{"open ends are not marks", time.Hour,
			[]api.Span{sp("rec-a", at(30*m), at(10*s))},
			1, nil, "", "50 %"},
		{"a flapping camera in the 24 h view: 99 holes, one mark", 24 * time.Hour,
			flapping(), 1, []mark{{979.26, 11.37}}, "99 gaps in footage between " + at(30*m).Add(8*s).Local().Format("15:04:05") + " and " + at(30*m).Add(990*s).Local().Format("15:04:05") + " (3m18s in all)", "1 %"},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := to.Add(-c.window)
			rects, marks, cover := timelineOf(c.spans, from, to, colorMap{}, "/view?camera=rec-a/cam1")
			if len(rects) != c.rects {
				t.Errorf("%d rectangles, want %d: %+v", len(rects), c.rects, rects)
			}
			if len(marks) != len(c.marks) {
				t.Fatalf("marks %+v, want %v", marks, c.marks)
			}
			for i, w := range c.marks {
				x, _ := strconv.ParseFloat(marks[i].X, 64)
				wd, _ := strconv.ParseFloat(marks[i].W, 64)
				if abs(x-w.x) > 0.01 || abs(wd-w.w) > 0.01 {
					t.Errorf("mark %d at %.2f width %.3f, want %.2f width %.3f", i, x, wd, w.x, w.w)
				}
			}
			if c.title != "" && !strings.Contains(marks[0].Title, c.title) {
				t.Errorf("mark title %q lacks %q", marks[0].Title, c.title)
			}
			if cover != c.cover {
				t.Errorf("coverage %s, want %s", cover, c.cover)
			}
			for _, r := range rects {
				if !strings.HasPrefix(r.View, "/view?camera=rec-a/cam1&at=") {
					t.Errorf("span links to %q, want the view at its start", r.View)
				}
			}
		})
	}
}

func TestTicks(t *testing.T) {
	to := time.Date(2025, 3, 10, 12, 3, 0, 0, time.UTC)
	for _, c := range []struct {
		window time.Duration
		labels string
		first  string // x of the first tick, in percent
	}{
		{time.Hour, "11:10 11:20 11:30 11:40 11:50 12:00", "11.67"},
		{24 * time.Hour, "16:00 20:00 00:00 04:00 08:00 12:00", "16.46"},
		{7 * 24 * time.Hour, "Mar 4 Mar 5 Mar 6 Mar 7 Mar 8 Mar 9 Mar 10", "7.11"},
	} {
		ts := ticks(to.Add(-c.window), to, time.UTC)
		var labels []string
		for _, tk := range ts {
			labels = append(labels, tk.Label)
		}
		if got := strings.Join(labels, " "); got != c.labels {
			t.Errorf("%v: ticks %q, want %q", c.window, got, c.labels)
		}
		if len(ts) > 0 && ts[0].X != c.first {
			t.Errorf("%v: first tick at %s %%, want %s", c.window, ts[0].X, c.first)
		}
	}
}

// failoverSite is one camera recorded by rec-a until 20 min ago and by
// rec-b 5 s later: a kill -9 failover.
func failoverSite() *fakeSource {
	return &fakeSource{
		self: "rec-a",
		cluster: []api.ServerInfo{
			{Name: "rec-a", State: "alive", Inventory: []api.HomeCamera{{ID: "rec-a/cam1", PlannedOn: "rec-b"}}},
		},
		cameras: api.Cameras{Server: "rec-a"},
		spans: map[string][]api.Span{"rec-a/cam1": {
			{Start: testNow.Add(-50 * time.Minute), End: testNow.Add(-20 * time.Minute), RecordedBy: "rec-a"},
			{Start: testNow.Add(-20*time.Minute + 5*time.Second), End: testNow, RecordedBy: "rec-b"},
		}},
	}
}

var (
	axisRE    = regexp.MustCompile(`<table class="cameras" data-range="([^"]*)" data-from-ms="(\d+)" data-to-ms="(\d+)">`)
	gapMarkRE = regexp.MustCompile(`<rect class="gapmark" x="([0-9.]+)" y="0" width="([0-9.]+)" height="14"><title>([^<]*)</title></rect>`)
	zoomOnRE  = regexp.MustCompile(`<a href="/\?range=([^"]+)" data-range="[^"]+" class="on" aria-current="true">`)
)

// TestPageZoom: ?range= picks the window of every timeline, the axis the
// page carries for the click script is the one the spans are drawn on, a
// failover of seconds shows as a mark in the 1 h view, the choice survives
// the page's refresh (a plain reload of its URL) and an acknowledgement,
// and a range the page does not offer is a 400 saying which it does.
func TestPageZoom(t *testing.T) {
	auth := newTestAuth(t, AuthOptions{})
	srv := serveNode(t, failoverSite(), auth, Options{})
	for _, c := range []struct {
		query  string
		window time.Duration
		on     string
		text   string
	}{
		{"", 24 * time.Hour, "24h", "last 24 h"},
		{"?range=1h", time.Hour, "1h", "last 1 h"},
		{"?range=24h", 24 * time.Hour, "24h", "last 24 h"},
		{"?range=7d", 7 * 24 * time.Hour, "7d", "last 7 d"},
	} {
		resp, body := get(t, srv.Client(), srv.URL+"/"+c.query)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /%s: %d %s", c.query, resp.StatusCode, body)
		}
		if !strings.Contains(body, `<meta http-equiv="refresh" content="5">`) {
			t.Errorf("%s: the refresh must reload the same URL (no url= that drops the range)", c.query)
		}
		if m := zoomOnRE.FindAllStringSubmatch(body, -1); len(m) != 1 || m[0][1] != c.on {
			t.Errorf("%s: zoom links marked on: %v, want %s", c.query, m, c.on)
		}
		if !strings.Contains(body, c.text) {
			t.Errorf("%s: page does not say %q", c.query, c.text)
		}
		ax := axisRE.FindStringSubmatch(body)
		if ax == nil {
			t.Fatalf("%s: no axis on the cameras table", c.query)
		}
		fromMs, _ := strconv.ParseInt(ax[2], 10, 64)
		toMs, _ := strconv.ParseInt(ax[3], 10, 64)
		if from := testNow.Add(-c.window).UnixMilli(); fromMs != from || toMs != testNow.UnixMilli() {
			t.Errorf("%s: axis %d–%d, want %d–%d", c.query, fromMs, toMs, from, testNow.UnixMilli())
		}
		// The click script maps x to from + x/width × (to − from): the spans
		// must be drawn on that same axis.
		row := rowOf(t, body, "data-camera", "rec-a/cam1")
		rects := rectRE.FindAllStringSubmatch(row, -1)
		if len(rects) != 2 {
			t.Fatalf("%s: %d spans, want 2: %s", c.query, len(rects), row)
		}
		start := testNow.Add(-20*time.Minute + 5*time.Second)
		wantX := float64(start.UnixMilli()-fromMs) / float64(toMs-fromMs) * 1000
		if x := atof(t, rects[1][1]); abs(x-wantX) > 0.01 || rects[1][4] != "rec-b" {
			t.Errorf("%s: rec-b's span at x=%v, want %.2f on the page's axis", c.query, x, wantX)
		}
		marks := gapMarkRE.FindAllStringSubmatch(row, -1)
		if len(marks) != 1 || !strings.Contains(marks[0][3], "(5s)") {
			t.Fatalf("%s: gap marks %v, want the 5 s failover", c.query, marks)
		}
		if strings.Index(row, `class="gapmark"`) < strings.LastIndex(row, `class="span"`) {
			t.Errorf("%s: the gap mark is drawn under a span", c.query)
		}
		if c.window == time.Hour {
			if x, w := atof(t, marks[0][1]), atof(t, marks[0][2]); abs(x-666.67) > 0.01 || abs(w-1.39) > 0.01 {
				t.Errorf("1 h: gap mark at %v width %v, want 666.67 width 1.39", x, w)
			}
		}
		if want := fmt.Sprintf(`<a href="/view?camera=rec-a/cam1&at=%s">`, start.UTC().Format(time.RFC3339)); !strings.Contains(row, want) {
			t.Errorf("%s: rec-b's span does not link to the view at its start (%s): %s", c.query, want, row)
		}
	}
	resp, body := get(t, srv.Client(), srv.URL+"/?range=5y")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `range: "5y" is not a timeline range (1h, 24h, 7d)`) {
		t.Errorf("bad range: %d %q", resp.StatusCode, body)
	}
}

// TestAckKeepsZoom: acknowledging from the 1 h view returns to the 1 h view.
func TestAckKeepsZoom(t *testing.T) {
	srv, _, _ := site(t)
	resp, body := get(t, srv.Client(), srv.URL+"/?range=1h", "Authorization", basic("alice", "alice-pw"))
	if resp.StatusCode != 200 || !strings.Contains(body, `<input type="hidden" name="range" value="1h">`) {
		t.Fatalf("ack form of the 1 h view does not carry the range: %d", resp.StatusCode)
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for rng, want := range map[string]string{"1h": "/?range=1h#events", "": "/#events", "bogus": "/#events"} {
		form := url.Values{"id": {"000000000000000000000003"}, "range": {rng}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ack", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic("bob", "bob-pw"))
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("ack with range %q: %d to %q, want %q", rng, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

// TestPageViewLinksAndCodec: every camera of the site links to its view —
// own, adopted, a peer's, one planned but not started, and a dead server's
// cameras nobody records — and its timeline carries the view for the click
// script; the codec column says what each recorder reports, a peer's too.
func TestPageViewLinksAndCodec(t *testing.T) {
	srv, _, _ := site(t)
	html := page(t, srv)
	for _, c := range []struct{ id, codec string }{
		{"rec-a/lobby", "H.264 + AAC"}, // own
		{"rec-c/door", "H.264"},        // adopted from the dead rec-c
		{"rec-b/yard", "H.265"},        // the peer's, from its /api/v1/cameras
		{"rec-b/dock", "—"},            // planned, not started
		{"rec-c/gate", "—"},            // the dead server's, nobody records it
		{"rec-c/shed", "—"},
	} {
		row := rowOf(t, html, "data-camera", c.id)
		if want := `<a class="camlink" href="/view?camera=` + c.id + `"`; !strings.Contains(row, want) {
			t.Errorf("%s: no link to its view (%s): %s", c.id, want, row)
		}
		if want := `data-view="/view?camera=` + c.id + `"`; !strings.Contains(row, want) {
			t.Errorf("%s: timeline without the view for clicks: %s", c.id, row)
		}
		if want := ">" + c.codec + "</td>"; !regexp.MustCompile(`<td class="codec[^"]*"[^>]*>` + regexp.QuoteMeta(c.codec) + `</td>`).MatchString(row) {
			t.Errorf("%s: codec column lacks %q: %s", c.id, want, row)
		}
	}
	if yard := rowOf(t, html, "data-camera", "rec-b/yard"); !strings.Contains(yard, `class="codec codec-h265" title="H.265: a browser without an HEVC decoder`) {
		t.Errorf("H.265 not flagged for browsers: %s", yard)
	}
	if !strings.Contains(html, "<th>Codec</th>") {
		t.Error("cameras table has no codec header")
	}
}

// TestFootageOfUnknownCameraNotLinked: footage of a camera no configuration
// has any more is listed, but not linked: the view would not know it.
func TestFootageOfUnknownCameraNotLinked(t *testing.T) {
	src := failoverSite()
	src.spans["rec-a/gone"] = []api.Span{{Start: testNow.Add(-time.Hour), End: testNow.Add(-30 * time.Minute), RecordedBy: "rec-a"}}
	srv := serveNode(t, src, newTestAuth(t, AuthOptions{}), Options{})
	_, body := get(t, srv.Client(), srv.URL+"/")
	row := rowOf(t, body, "data-camera", "rec-a/gone")
	if strings.Contains(row, "/view?") || !strings.Contains(row, "not in any server's configuration now") {
		t.Errorf("row of a camera no server has: %s", row)
	}
}
