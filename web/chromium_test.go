package web

import (
	"strings"
	"testing"

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
