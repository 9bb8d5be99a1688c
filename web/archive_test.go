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
