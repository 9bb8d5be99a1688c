package web

import (
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
