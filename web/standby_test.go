package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/buddyrec/buddyrec/api"
)

// TestPageShowsStandbySessions: a server's row says which standby
// sessions it holds, per home and mode, from its own answer; a server
// holding none says nothing of standby.
func TestPageShowsStandbySessions(t *testing.T) {
	auth := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), TokenFile: writeFile(t, "token", apiToken), GossipKey: gossipKey})
	b := siteB()
	b.cameras.Standby = []api.CameraInfo{
		{ID: "rec-a/lobby", Home: "rec-a", RecordedBy: "rec-b", State: "recording", Standby: "hot"},
		{ID: "rec-a/door", Home: "rec-a", RecordedBy: "rec-b", State: "recording", Standby: "hot"},
	}
	peer := serveNode(t, b, auth, Options{})
	srv := serveNode(t, siteA(strings.TrimPrefix(peer.URL, "http://")), auth, Options{})
	html := page(t, srv)
	if row := rowOf(t, html, "data-server", "rec-b"); !strings.Contains(row, "standby for 2 cameras of rec-a (hot)") {
		t.Errorf("rec-b row lacks its standby sessions: %s", row)
	}
	if row := rowOf(t, html, "data-server", "rec-a"); strings.Contains(row, "standby for") {
		t.Errorf("rec-a row shows standby sessions it does not hold: %s", row)
	}
}

// TestTimelineDrawsTheHomeOnTop: where a mirror and the home both hold a
// camera's footage, the home's rectangles are drawn after (over) the
// mirror's, which shows where the home has nothing.
func TestTimelineDrawsTheHomeOnTop(t *testing.T) {
	mirror := spanRect{X: "0", W: "1000", By: "rec-b"}
	home1, home2 := spanRect{X: "0", W: "400", By: "rec-a"}, spanRect{X: "600", W: "400", By: "rec-a"}
	got := homeOnTop([]spanRect{home1, mirror, home2}, "rec-a")
	want := []spanRect{mirror, home1, home2}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	// An adopter's span between two of the home's keeps its place.
	adopted := spanRect{X: "400", W: "200", By: "rec-b"}
	if got := homeOnTop([]spanRect{home1, adopted, home2}, "rec-a"); !slices.Equal(got, []spanRect{home1, adopted, home2}) {
		t.Errorf("order %v, want the start order", got)
	}
}
