package web

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

	run := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir()}
		cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.Bytes()
	}

	dom := string(run("--dump-dom", srv.URL+"/"))
	for _, want := range []string{
		`data-server="rec-c" data-state="DEAD"`,
		`<span class="state dead">DEAD</span>`,
		"own + adopted from rec-c",
		`data-camera="rec-c/door"`, "adopted from rec-c",
		`data-camera="rec-b/yard"`, // fetched from the peer
		"rec-c stopped answering gossip", `action="/ack"`, "1 unacknowledged alarm",
		`data-recorded-by="rec-b"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, camPassword) {
		t.Error("rendered DOM contains the camera password")
	}

	dir := os.Getenv("BUDDYREC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "buddyrec-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "status-page.png")
	os.Remove(shot)
	run("--screenshot="+shot, "--window-size=1400,1000", "--hide-scrollbars", srv.URL+"/")
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(b) < 10_000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", shot, len(b))
	}
	t.Logf("status page screenshot: %s", shot)
}
