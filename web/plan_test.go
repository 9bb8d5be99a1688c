package web

import (
	"strings"
	"testing"

	"github.com/buddyrec/buddyrec/api"
)

func TestPageShowsWhereCamerasGoIfAServerFails(t *testing.T) {
	auth := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), TokenFile: writeFile(t, "token", apiToken), GossipKey: gossipKey})
	peer := serveNode(t, siteB(), auth, Options{})
	src := siteA(strings.TrimPrefix(peer.URL, "http://"))
	src.ifFails = []api.IfFails{
		{Server: "rec-a", To: map[string]int{"rec-b": 6, "rec-c": 2}, Unplaced: 1},
		{Server: "rec-b", To: map[string]int{}},
	}
	html := page(t, serveNode(t, src, auth, Options{}))
	if a := rowOf(t, html, "data-server", "rec-a"); !strings.Contains(a, `<td class="iffails">6 → rec-b, 2 → rec-c, 1 not recorded</td>`) {
		t.Errorf("rec-a row lacks its failure preview: %s", a)
	}
	if b := rowOf(t, html, "data-server", "rec-b"); !strings.Contains(b, `<td class="iffails">no cameras to move</td>`) {
		t.Errorf("rec-b row: %s", b)
	}
	// rec-c is dead: no preview, a dash.
	if c := rowOf(t, html, "data-server", "rec-c"); !strings.Contains(c, `<td class="iffails"><span class="dim">—</span></td>`) {
		t.Errorf("rec-c row: %s", c)
	}
}
