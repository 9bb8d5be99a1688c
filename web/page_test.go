package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/buddyrec/buddyrec/events"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// site starts rec-b (a real peer behind auth) and returns rec-a's server,
// its source and the auth both use.
func site(t *testing.T) (*httptest.Server, *fakeSource, *Auth) {
	t.Helper()
	auth := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), TokenFile: writeFile(t, "token", apiToken), GossipKey: gossipKey})
	peer := serveNode(t, siteB(), auth, Options{})
	src := siteA(strings.TrimPrefix(peer.URL, "http://"))
	return serveNode(t, src, auth, Options{}), src, auth
}

func page(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	resp, body := get(t, srv.Client(), srv.URL+"/", "Authorization", basic("alice", "alice-pw"))
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("content type %q", ct)
	}
	return body
}

// rowOf returns the table row carrying attr="value".
func rowOf(t *testing.T, page, attr, value string) string {
	t.Helper()
	re := regexp.MustCompile(`(?s)<tr [^>]*` + attr + `="` + regexp.QuoteMeta(value) + `"[^>]*>.*?</tr>`)
	m := re.FindString(page)
	if m == "" {
		t.Fatalf("no row with %s=%q in page", attr, value)
	}
	return html.UnescapeString(m)
}

var (
	rectRE   = regexp.MustCompile(`<rect class="span" x="([0-9.]+)" y="0" width="([0-9.]+)" height="14" fill="(#[0-9a-f]{6})" data-recorded-by="([^"]+)">`)
	legendRE = regexp.MustCompile(`<span class="legend-item" data-server="([^"]+)"><svg[^>]*><rect width="10" height="10" fill="(#[0-9a-f]{6})"/>`)
)

func TestPageShowsWholeSite(t *testing.T) {
	srv, _, _ := site(t)
	html := page(t, srv)

	for _, want := range []string{`<meta http-equiv="refresh" content="5">`, `href="/static/style.css"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// One script, the page's own from /static, deferred: the page works
	// without it (links and forms); nothing comes from elsewhere.
	if scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1); len(scripts) != 1 || scripts[0] != `<script src="/static/page.js" defer>` {
		t.Errorf("scripts %q: want only the page's own", scripts)
	}
	if strings.Contains(html, "http://cdn") || strings.Contains(html, "https://") {
		t.Error("page must not need external assets")
	}

	// Site table: rec-c visibly dead, rec-a adopted its cameras.
	dead := rowOf(t, html, "data-server", "rec-c")
	if !strings.Contains(dead, `class="server dead"`) || !strings.Contains(dead, ">DEAD<") {
		t.Errorf("dead server row not marked dead: %s", dead)
	}
	a := rowOf(t, html, "data-server", "rec-a")
	for _, want := range []string{"this server", "own + adopted from rec-c", "2 / 8", "1 / 4", "25 %", "300.0 MB", "400.0 GB / 1.0 TB", ">alive<"} {
		if !strings.Contains(a, want) {
			t.Errorf("rec-a row lacks %q: %s", want, a)
		}
	}
	if b := rowOf(t, html, "data-server", "rec-b"); !strings.Contains(b, "1 / 8") || !strings.Contains(b, "∞") {
		t.Errorf("rec-b row: %s", b)
	}

	// Alarms newest first, the unacknowledged one highlighted with a form.
	i3, i2, i1 := strings.Index(html, `data-event="000000000000000000000003"`), strings.Index(html, `data-event="000000000000000000000002"`), strings.Index(html, `data-event="000000000000000000000001"`)
	if !(i3 >= 0 && i3 < i2 && i2 < i1) {
		t.Errorf("events not newest first: %d %d %d", i3, i2, i1)
	}
	un := rowOf(t, html, "data-event", "000000000000000000000003")
	if !strings.Contains(un, "unacked") || !strings.Contains(un, `<form method="post" action="/ack">`) || !strings.Contains(un, `value="000000000000000000000003"`) {
		t.Errorf("unacked alarm not highlighted with an ack form: %s", un)
	}
	acked := rowOf(t, html, "data-event", "000000000000000000000002")
	if strings.Contains(acked, "unacked") || strings.Contains(acked, "<form") || !strings.Contains(acked, "by alice") {
		t.Errorf("acked alarm row: %s", acked)
	}
	if !strings.Contains(html, "1 unacknowledged alarm<") {
		t.Error("header does not count the unacknowledged alarm")
	}

	// Cameras: own, adopted, and the peer's yard fetched from rec-b.
	door := rowOf(t, html, "data-camera", "rec-c/door")
	if !strings.Contains(door, `data-recorder="rec-a"`) || !strings.Contains(door, "adopted from rec-c") || !strings.Contains(door, "offline") {
		t.Errorf("adopted camera row: %s", door)
	}
	if !strings.Contains(door, "connection refused") {
		t.Errorf("camera error not shown: %s", door)
	}
	yard := rowOf(t, html, "data-camera", "rec-b/yard")
	if !strings.Contains(yard, `data-recorder="rec-b"`) || !strings.Contains(yard, "recording") || !strings.Contains(yard, "1.00 Mb/s") {
		t.Errorf("peer camera row: %s", yard)
	}
	if strings.Contains(html, `class="unknown"`) {
		t.Error("reachable peer reported unknown")
	}

	// Timeline: lobby footage by rec-a and (during an outage) rec-b, each in
	// its legend colour, with gaps between.
	legend := map[string]string{}
	for _, m := range legendRE.FindAllStringSubmatch(html, -1) {
		legend[m[1]] = m[2]
	}
	if len(legend) != 3 || legend["rec-a"] == legend["rec-b"] {
		t.Fatalf("legend %v: want a distinct colour per server", legend)
	}
	lobby := rowOf(t, html, "data-camera", "rec-a/lobby")
	rects := rectRE.FindAllStringSubmatch(lobby, -1)
	if len(rects) != 3 {
		t.Fatalf("lobby timeline has %d spans, want 3: %s", len(rects), lobby)
	}
	type seg struct{ x, w float64 }
	var byRec = map[string][]seg{}
	for _, m := range rects {
		if m[3] != legend[m[4]] {
			t.Errorf("span by %s drawn in %s, legend says %s", m[4], m[3], legend[m[4]])
		}
		byRec[m[4]] = append(byRec[m[4]], seg{atof(t, m[1]), atof(t, m[2])})
	}
	// 24 h over 1000 units: rec-a 4h–14h and 18h–24h, rec-b 15h–17h.
	want := map[string][]seg{"rec-a": {{166.67, 416.67}, {750, 250}}, "rec-b": {{625, 83.33}}}
	for rec, ws := range want {
		if len(byRec[rec]) != len(ws) {
			t.Fatalf("spans of %s: %v, want %v", rec, byRec[rec], ws)
		}
		for i, w := range ws {
			g := byRec[rec][i]
			if abs(g.x-w.x) > 0.1 || abs(g.w-w.w) > 0.1 {
				t.Errorf("%s span %d at %v, want %v", rec, i, g, w)
			}
		}
	}
	if !strings.Contains(lobby, "75 %") {
		t.Errorf("lobby coverage (18 of 24 h) missing: %s", lobby)
	}
}

// TestPageListsEveryCameraOfTheSite: cameras nobody records, those of a
// dead server included, are rows of their own in red with the reason, as
// many as the site has; a camera planned on a live server that has not
// started it says so; an offline camera shows its next attempt.
func TestPageListsEveryCameraOfTheSite(t *testing.T) {
	srv, _, _ := site(t)
	html := page(t, srv)
	for _, id := range []string{"rec-c/gate", "rec-c/shed"} {
		row := rowOf(t, html, "data-camera", id)
		if !strings.Contains(row, `class="camera st-unrecorded"`) || !strings.Contains(row, "not recorded — no live buddy with capacity") {
			t.Errorf("unrecorded camera %s not shown in red with its reason: %s", id, row)
		}
		if strings.Contains(row, "data-recorder=") {
			t.Errorf("unrecorded camera %s names a recorder: %s", id, row)
		}
	}
	if gate := rowOf(t, html, "data-camera", "rec-c/gate"); !strings.Contains(gate, "critical") {
		t.Errorf("critical tag missing on an unrecorded camera: %s", gate)
	}
	if n := strings.Count(html, `class="camera st-unrecorded"`); n != 2 {
		t.Errorf("%d unrecorded rows, want 2", n)
	}
	if !strings.Contains(html, `href="#cameras">2 cameras not recorded</a>`) {
		t.Error("header does not count the unrecorded cameras")
	}
	dock := rowOf(t, html, "data-camera", "rec-b/dock")
	if !strings.Contains(dock, "planned on rec-b, which has not started it yet") {
		t.Errorf("planned camera row: %s", dock)
	}
	door := rowOf(t, html, "data-camera", "rec-c/door")
	if want := "next attempt " + testNow.Add(12*time.Second).Local().Format("15:04:05"); !strings.Contains(door, want) {
		t.Errorf("offline camera row lacks %q: %s", want, door)
	}
	// Every camera of every inventory has exactly one row.
	for _, id := range []string{"rec-a/lobby", "rec-b/dock", "rec-b/yard", "rec-c/door", "rec-c/gate", "rec-c/shed"} {
		if n := strings.Count(html, `data-camera="`+id+`"`); n != 1 {
			t.Errorf("%s has %d rows, want 1", id, n)
		}
	}
}

// TestPageFigures: each server's row shows the figures it gave itself
// (exact memory, buddyrec's own disk use beside the filesystem's), and
// each camera the disk its footage takes and the oldest kept, summed over
// the servers holding it.
func TestPageFigures(t *testing.T) {
	srv, _, _ := site(t)
	html := page(t, srv)
	b := rowOf(t, html, "data-server", "rec-b")
	for _, want := range []string{"27.3 MB", "60.0 GB", "100.0 GB / 500.0 GB", "20 %"} {
		if !strings.Contains(b, want) {
			t.Errorf("rec-b row lacks %q: %s", want, b)
		}
	}
	if strings.Contains(b, "16.8 MB") {
		t.Errorf("rec-b row shows the rounded gossiped memory: %s", b)
	}
	if a := rowOf(t, html, "data-server", "rec-a"); !strings.Contains(a, `<td class="num recordings">350.0 GB</td>`) {
		t.Errorf("rec-a row lacks buddyrec's own usage: %s", a)
	}
	lobby := rowOf(t, html, "data-camera", "rec-a/lobby")
	oldest := testNow.Add(-20 * time.Hour).Local().Format("Jan 2 15:04")
	for _, want := range []string{`<td class="num disk" title="rec-a keeps 40.0 GB since ` + oldest + `; rec-b keeps 1.0 GB since`, ">41.0 GB</td>", ">" + oldest + "</td>"} {
		if !strings.Contains(lobby, want) {
			t.Errorf("lobby row lacks %q: %s", want, lobby)
		}
	}
	yard := rowOf(t, html, "data-camera", "rec-b/yard")
	if !strings.Contains(yard, ">10.0 GB</td>") || !strings.Contains(yard, ">"+testNow.Add(-30*24*time.Hour).Local().Format("Jan 2 15:04")+"</td>") {
		t.Errorf("yard row: %s", yard)
	}
	if shed := rowOf(t, html, "data-camera", "rec-c/shed"); !strings.Contains(shed, `<td class="num disk" title="no footage on the servers that answered">—</td>`) {
		t.Errorf("shed row: %s", shed)
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestAckForm(t *testing.T) {
	srv, src, _ := site(t)
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	post := func(id string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ack", strings.NewReader(url.Values{"id": {id}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic("bob", "bob-pw"))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// A cross-site form (CSRF riding the browser's Basic credentials) is refused.
	if resp := post("000000000000000000000003", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site ack: %d, want 403", resp.StatusCode)
	}
	if len(src.acks) != 0 {
		t.Fatalf("cross-site ack reached the log: %v", src.acks)
	}
	resp := post("000000000000000000000003", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/#events" {
		t.Fatalf("ack: %d to %q, want 303 to /#events", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(src.acks) != 1 || src.acks[0] != "000000000000000000000003 bob" {
		t.Fatalf("acks %v, want the alarm acked by bob", src.acks)
	}
	row := rowOf(t, page(t, srv), "data-event", "000000000000000000000003")
	if strings.Contains(row, "unacked") || !strings.Contains(row, "by bob") {
		t.Errorf("acked alarm still highlighted: %s", row)
	}
	if resp := post("ffffffffffffffffffffffff"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", resp.StatusCode)
	}
	if resp := post(""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("empty id: %d, want 400", resp.StatusCode)
	}
	// Without credentials nothing is acknowledged.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ack", strings.NewReader("id=000000000000000000000001"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 401 || len(src.acks) != 1 {
		t.Errorf("anonymous ack: %d, acks %v", r2.StatusCode, src.acks)
	}
}

func TestPeerUnreachable(t *testing.T) {
	auth := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), GossipKey: gossipKey})
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	wrongKey := serveNode(t, siteB(), newTestAuth(t, AuthOptions{UsersFile: usersFile(t), GossipKey: []byte("another-site-key-0123456789abcde")}), Options{})

	src := siteA(strings.TrimPrefix(hang.URL, "http://"))
	src.cluster = append(src.cluster,
		src.cluster[1], // rec-d: a peer of another site (wrong gossip key)
	)
	src.cluster[3].Name, src.cluster[3].HTTP = "rec-d", strings.TrimPrefix(wrongKey.URL, "http://")
	srv := serveNode(t, src, auth, Options{PeerTimeout: 300 * time.Millisecond})

	// The hanging peer never answers while the test runs: the page
	// returning at all shows it did not wait for it (the bound is only a
	// guard against a hang, generous for a loaded machine).
	start := time.Now()
	html := page(t, srv)
	if el := time.Since(start); el > time.Minute {
		t.Fatalf("page took %s with a hanging peer", el)
	}
	for _, want := range []string{`data-peer="rec-b"><b>rec-b</b>: unknown — cameras unknown: no answer within 300ms`,
		`data-peer="rec-d"><b>rec-d</b>: unknown — cameras unknown: answered HTTP 401`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// What this server knows itself is still there.
	rowOf(t, html, "data-camera", "rec-a/lobby")
	rowOf(t, html, "data-server", "rec-c")
	// The silent peer's cameras are still listed, from its inventory.
	if yard := rowOf(t, html, "data-camera", "rec-b/yard"); !strings.Contains(yard, "unknown") || !strings.Contains(yard, "planned on rec-b, which did not answer") {
		t.Errorf("camera of a silent peer: %s", yard)
	}
}

func TestLocalTimelineError(t *testing.T) {
	auth := newTestAuth(t, AuthOptions{})
	src := siteA("127.0.0.1:1") // nothing listens: peer unreachable at once
	src.tlErr = errors.New("index: open /data/index.db: input/output error")
	srv := serveNode(t, src, auth, Options{})
	resp, html := get(t, srv.Client(), srv.URL+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("page %d", resp.StatusCode)
	}
	if !strings.Contains(html, "local recording index unreadable") || !strings.Contains(html, "cameras unknown: unreachable") {
		t.Error("page does not explain missing data")
	}
	if strings.Contains(html, "/data/index.db") {
		t.Error("internal error detail shown on the page")
	}
	resp, body := get(t, srv.Client(), srv.URL+"/api/v1/timeline")
	if resp.StatusCode != 500 || strings.Contains(body, "index.db") {
		t.Errorf("timeline error: %d %s", resp.StatusCode, body)
	}
}

func TestTimelineAPI(t *testing.T) {
	srv, _, auth := site(t)
	_, peer := auth.PeerHeader()
	q := func(from, to string) (int, Timeline, string) {
		v := url.Values{}
		if from != "" {
			v.Set("from", from)
		}
		if to != "" {
			v.Set("to", to)
		}
		resp, body := get(t, srv.Client(), srv.URL+"/api/v1/timeline?"+v.Encode(), "Authorization", peer)
		var tl Timeline
		if resp.StatusCode == 200 {
			if err := json.Unmarshal([]byte(body), &tl); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
		}
		return resp.StatusCode, tl, body
	}
	code, tl, _ := q("", "")
	if code != 200 || tl.Server != "rec-a" || len(tl.Cameras["rec-a/lobby"]) != 2 || len(tl.Cameras["rec-c/door"]) != 1 {
		t.Fatalf("default window: %d %+v", code, tl)
	}
	if !tl.To.Equal(testNow) || !tl.From.Equal(testNow.Add(-24*time.Hour)) {
		t.Errorf("default window %v–%v", tl.From, tl.To)
	}
	code, tl, _ = q(testNow.Add(-3*time.Hour).Format(time.RFC3339), testNow.Format(time.RFC3339))
	if code != 200 || len(tl.Cameras["rec-a/lobby"]) != 1 || tl.Cameras["rec-a/lobby"][0].RecordedBy != "rec-a" {
		t.Errorf("last 3 h: %d %+v", code, tl)
	}
	bad := []struct{ from, to, want string }{
		{"yesterday", "", "from:"},
		{"", "soon", "to:"},
		{testNow.Format(time.RFC3339), testNow.Add(-time.Hour).Format(time.RFC3339), "to: must be after from"},
		{testNow.Add(-40 * 24 * time.Hour).Format(time.RFC3339), testNow.Format(time.RFC3339), "31 days"},
	}
	for _, b := range bad {
		code, _, body := q(b.from, b.to)
		if code != 400 || !strings.Contains(body, b.want) {
			t.Errorf("from=%q to=%q: %d %s", b.from, b.to, code, body)
		}
	}
}

func TestStaticAndUnknownPaths(t *testing.T) {
	srv, _, _ := site(t)
	resp, css := get(t, srv.Client(), srv.URL+"/static/style.css", "Authorization", basic("alice", "alice-pw"))
	if resp.StatusCode != 200 || !strings.Contains(css, "tr.server.dead") {
		t.Errorf("stylesheet: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.Client(), srv.URL+"/static/style.css"); resp.StatusCode != 401 {
		t.Errorf("static without credentials: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.Client(), srv.URL+"/nope", "Authorization", basic("alice", "alice-pw")); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

// TestNoSecrets walks every answer the web package gives and looks for the
// camera password, API token, gossip key and peer token.
func TestNoSecrets(t *testing.T) {
	srv, _, auth := site(t)
	_, peer := auth.PeerHeader()
	secrets := []string{camPassword, apiToken, string(gossipKey), base64.StdEncoding.EncodeToString(gossipKey), PeerToken(gossipKey), testHashes()["alice-pw"]}
	answers := map[string]string{}
	for _, p := range []string{"/", "/api/v1/timeline", "/static/style.css", "/nope", "/api/v1/timeline?from=x"} {
		for name, hdr := range map[string]string{"user": basic("alice", "alice-pw"), "peer": peer, "none": "", "wrong": "Bearer " + apiToken + "0"} {
			_, body := get(t, srv.Client(), srv.URL+p, "Authorization", hdr)
			answers[name+" "+p] = body
		}
	}
	if !strings.Contains(answers["user /"], "connection refused") {
		t.Fatal("fixture error text missing: the scan would prove nothing")
	}
	for where, body := range answers {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s: answer contains secret %q", where, s)
			}
		}
	}
}

// TestPeerAlarmsShownAndAckedWhereTheyLive: a technician on rec-a sees the
// alarm rec-b raised, and acknowledging it on rec-a's page acknowledges it
// in rec-b's log (called as a peer, naming the technician).
func TestPeerAlarmsShownAndAckedWhereTheyLive(t *testing.T) {
	b := siteB()
	b.events = []events.Event{{ID: "00000000000000000000000b", Time: testNow.Add(-time.Minute), Type: events.TypeServerDown,
		Severity: events.SeverityAlarm, Server: "rec-b", Text: "server rec-x is down"}}
	auth := newTestAuth(t, AuthOptions{})
	peer := serveNode(t, b, auth, Options{})
	a := siteA(strings.TrimPrefix(peer.URL, "http://"))
	srv := serveNode(t, a, auth, Options{})

	row := rowOf(t, page(t, srv), "data-event", "00000000000000000000000b")
	if !strings.Contains(row, "server rec-x is down") || !strings.Contains(row, "unacked") || !strings.Contains(row, `name="server" value="rec-b"`) {
		t.Fatalf("rec-b's alarm is not shown on rec-a's page with an ack form for rec-b: %s", row)
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ack", strings.NewReader(url.Values{"id": {"00000000000000000000000b"}, "server": {"rec-b"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("forwarded ack: %d, want 303", resp.StatusCode)
	}
	b.mu.Lock()
	acks := append([]string(nil), b.acks...)
	b.mu.Unlock()
	if len(acks) != 1 || !strings.HasPrefix(acks[0], "00000000000000000000000b ") {
		t.Fatalf("rec-b's log got acks %v", acks)
	}
	if len(a.acks) != 0 {
		t.Errorf("the ack landed in rec-a's own log: %v", a.acks)
	}
	row = rowOf(t, page(t, srv), "data-event", "00000000000000000000000b")
	if strings.Contains(row, "unacked") {
		t.Errorf("acknowledged peer alarm still highlighted: %s", row)
	}
}

// TestResolvedAlarmRow: an alarm whose condition cleared says so and loses
// the live-alarm highlight, but can still be acknowledged.
func TestResolvedAlarmRow(t *testing.T) {
	e := events.Event{ID: "000000000000000000000009", Time: testNow.Add(-time.Hour), Type: events.TypeCameraOffline,
		Severity: events.SeverityAlarm, Condition: "camera/rec-a/x", ResolvedAt: testNow.Add(-time.Minute), ResolvedBy: "00000000000000000000000a"}
	row := eventRowOf(e)
	if !row.NeedsAck || !strings.Contains(row.Class, "resolved") || row.ResolvedAt == "" {
		t.Fatalf("resolved alarm row %+v, want acknowledgeable and marked resolved", row)
	}
	var buf strings.Builder
	if err := pageTmpl.Execute(&buf, &pageData{Events: []eventRow{row}}); err != nil {
		t.Fatal(err)
	}
	html := rowOf(t, buf.String(), "data-event", e.ID)
	if !strings.Contains(html, "resolved "+row.ResolvedAt) || !strings.Contains(html, `action="/ack"`) {
		t.Errorf("resolved alarm rendered as %s", html)
	}
}
