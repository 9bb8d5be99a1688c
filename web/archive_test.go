package web

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// archiveSource is a source that knows a dead server's archive.
type archiveSource struct {
	*fakeSource
	unreachable map[string][]api.Unreachable
}

func (a archiveSource) Unreachable() map[string][]api.Unreachable { return a.unreachable }

// TestDeadServersArchive: rec-c is down; rec-a adopted its door camera an
// hour ago. The page shows the adopted footage on the door's timeline and
// says where the rest is, and the timeline API carries the same.
func TestDeadServersArchive(t *testing.T) {
	down := testNow.Add(-time.Hour - 34*time.Minute - 20*time.Second) // 10:25:40
	src := archiveSource{
		fakeSource: &fakeSource{self: "rec-a",
			cluster: []api.ServerInfo{{Name: "rec-a", State: "alive"}, {Name: "rec-c", State: "dead"}},
			cameras: api.Cameras{Server: "rec-a"},
			spans:   map[string][]api.Span{"rec-c/door": {{Start: down.Add(2 * time.Second), End: testNow, RecordedBy: "rec-a"}}}},
		unreachable: map[string][]api.Unreachable{
			"rec-c/door": {{Server: "rec-c", Before: &down, Reason: "server down"}},
			"rec-c/shed": {{Server: "rec-c", Reason: "server down"}},
		},
	}
	srv := httptest.NewServer(NewHandler(Options{Source: src, Now: func() time.Time { return testNow }}))
	defer srv.Close()
	resp, body := get(t, srv.Client(), srv.URL+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	door := rowOf(t, body, "data-camera", "rec-c/door")
	if !strings.Contains(door, "before 10:25:40 on rec-c, unreachable") || len(rectRE.FindAllString(door, -1)) != 1 {
		t.Errorf("door row should show rec-a's footage and where the rest is:\n%s", door)
	}
	if shed := rowOf(t, body, "data-camera", "rec-c/shed"); !strings.Contains(shed, "footage on rec-c, unreachable (server down)") {
		t.Errorf("shed row (no footage on live servers) should say where its footage is:\n%s", shed)
	}

	resp, body = get(t, srv.Client(), srv.URL+"/api/v1/timeline")
	var tl Timeline
	if err := json.Unmarshal([]byte(body), &tl); err != nil || resp.StatusCode != 200 {
		t.Fatalf("timeline: %d %v", resp.StatusCode, err)
	}
	if u := tl.Unreachable["rec-c/door"]; len(u) != 1 || u[0].Server != "rec-c" || u[0].Before == nil || !u[0].Before.Equal(down) {
		t.Errorf("timeline unreachable = %+v", tl.Unreachable)
	}
}

// TestSiteTimeline: ?scope=site merges the alive peers' timelines into this
// server's, each span naming who holds it; the default stays local (what
// peers ask each other for).
func TestSiteTimeline(t *testing.T) {
	srv, _, _ := site(t)
	tl := func(scope string) Timeline {
		t.Helper()
		resp, body := get(t, srv.Client(), srv.URL+"/api/v1/timeline?scope="+scope, "Authorization", basic("alice", "alice-pw"))
		var out Timeline
		if err := json.Unmarshal([]byte(body), &out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("timeline scope=%s: %d %v %s", scope, resp.StatusCode, err, body)
		}
		return out
	}
	type got struct {
		by, held string
		from     time.Duration
	}
	lobby := func(tl Timeline) []got {
		var out []got
		for _, s := range tl.Cameras["rec-a/lobby"] {
			out = append(out, got{s.RecordedBy, strings.Join(s.HeldBy, ","), testNow.Sub(s.Start).Round(time.Hour)})
		}
		return out
	}
	merged := lobby(tl("site"))
	want := []got{{"rec-a", "rec-a", 20 * time.Hour}, {"rec-b", "rec-b", 9 * time.Hour}, {"rec-a", "rec-a", 6 * time.Hour}}
	if len(merged) != len(want) {
		t.Fatalf("site timeline of rec-a/lobby = %+v, want %+v", merged, want)
	}
	for i := range want {
		if merged[i] != want[i] {
			t.Errorf("site timeline of rec-a/lobby = %+v, want %+v", merged, want)
		}
	}
	if local := lobby(tl("local")); len(local) != 2 {
		t.Errorf("local timeline of rec-a/lobby = %+v, want rec-a's 2 spans only", local)
	}
	if len(tl("site").Cameras["rec-b/yard"]) != 1 {
		t.Errorf("site timeline lacks rec-b's own camera")
	}
	resp, _ := get(t, srv.Client(), srv.URL+"/api/v1/timeline?scope=galaxy", "Authorization", basic("alice", "alice-pw"))
	if resp.StatusCode != 400 {
		t.Errorf("scope=galaxy: %d, want 400", resp.StatusCode)
	}
}

func TestMergeCopies(t *testing.T) {
	h := time.Hour
	a := span("rec-b", 5*h, 2*h)
	a.HeldBy = []string{"rec-b"}
	b := span("rec-b", 5*h, 1*h)
	b.HeldBy = []string{"rec-a"}
	c := span("rec-a", 3*h, 0)
	c.HeldBy = []string{"rec-a"}
	out := mergeCopies([]api.Span{c, a, b})
	if len(out) != 2 || out[0].RecordedBy != "rec-b" || strings.Join(out[0].HeldBy, ",") != "rec-a,rec-b" ||
		!out[0].End.Equal(testNow.Add(-h)) || out[1].RecordedBy != "rec-a" {
		t.Errorf("mergeCopies = %+v, want rec-b's copies as one span held by both, then rec-a's", out)
	}
}

// TestBackfillOnPage: a home copying back footage from a buddy shows it
// on the camera's row, as its cameras answer reports it.
func TestBackfillOnPage(t *testing.T) {
	src := &fakeSource{self: "rec-a",
		cluster: []api.ServerInfo{{Name: "rec-a", State: "alive"}, {Name: "rec-b", State: "alive"}},
		cameras: api.Cameras{Server: "rec-a", Backfill: []api.BackfillCamera{
			{Camera: "rec-a/cam1", Peer: "rec-b", Copying: true, Text: "rec-a/cam1: 10 min at rec-b, copying 40 %"},
		}}}
	srv := httptest.NewServer(NewHandler(Options{Source: src, Now: func() time.Time { return testNow }}))
	defer srv.Close()
	_, body := get(t, srv.Client(), srv.URL+"/")
	if row := rowOf(t, body, "data-camera", "rec-a/cam1"); !strings.Contains(row, `<div class="backfill">rec-a/cam1: 10 min at rec-b, copying 40 %</div>`) {
		t.Errorf("cam1 row lacks the backfill line:\n%s", row)
	}
}
