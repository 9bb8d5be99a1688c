// Package testutil holds helpers shared by buddyrec's tests.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// NeedTool returns the path of an external program a test needs (ffprobe,
// chromium). Without it the test skips, unless BUDDYREC_REQUIRE_TOOLS is set
// (as .ci/run does after installing them), in which case it fails: CI must
// never pass by skipping.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("BUDDYREC_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is required (BUDDYREC_REQUIRE_TOOLS is set) but not on PATH", name)
	}
	t.Skipf("%s not installed; install it (see .ci/run) to run this test", name)
	return ""
}

// LookTool is NeedTool for a test that can still check other things
// without the program: it returns ok=false instead of skipping (and fails
// when BUDDYREC_REQUIRE_TOOLS is set).
func LookTool(t testing.TB, name string) (string, bool) {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p, true
	}
	if os.Getenv("BUDDYREC_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is required (BUDDYREC_REQUIRE_TOOLS is set) but not on PATH", name)
	}
	t.Logf("%s not installed: skipping the checks that need it", name)
	return "", false
}

// Chromium runs headless Chromium (from NeedTool) with flags for a closed,
// loopback-only machine, bounded to 60 s, and returns its standard output
// (e.g. the DOM for --dump-dom).
func Chromium(t testing.TB, chromium string, args ...string) []byte {
	t.Helper()
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

// Screenshot saves a PNG of url as a test artefact named name, in
// $BUDDYREC_ARTIFACTS or else the temp dir's buddyrec-artifacts, checks it
// is a plausible picture, and logs where it is.
func Screenshot(t testing.TB, chromium, url, name string) string {
	t.Helper()
	shot := artifactPath(t, name)
	os.Remove(shot)
	Chromium(t, chromium, "--screenshot="+shot, "--window-size=1400,1000", "--hide-scrollbars", url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(b) < 10_000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", shot, len(b))
	}
	t.Logf("screenshot: %s", shot)
	return shot
}

// Tmpfs mounts a tmpfs of the given size (e.g. "40m") on a fresh temporary
// folder and unmounts it when the test ends: a small disk that really
// fills up. It needs root; without it the test skips, unless
// BUDDYREC_REQUIRE_TOOLS is set, in which case it fails.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	fail := func(why string) {
		if os.Getenv("BUDDYREC_REQUIRE_TOOLS") != "" {
			t.Fatalf("a tmpfs is required (BUDDYREC_REQUIRE_TOOLS is set): %s", why)
		}
		t.Skipf("needs a tmpfs mount: %s", why)
	}
	if os.Geteuid() != 0 {
		fail("not root")
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		fail(fmt.Sprintf("mount: %v %s", err, bytes.TrimSpace(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}
