package testutil

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser starts a real headless Chromium driven over the DevTools protocol
// (chromedp), with the flags a closed, loopback-only machine needs, and
// returns a context for chromedp actions bounded by timeout. It skips (or
// fails under BUDDYREC_REQUIRE_TOOLS) without chromium; the browser is
// stopped when the test ends.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	chromium := NeedTool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	// the first action starts the browser, on a context without a timeout
	// (a timeout there would stop the browser); the test's actions run on a
	// bounded child of it
	if err := chromedp.Do(bctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// SaveArtifact writes b as the named test artefact under $BUDDYREC_ARTIFACTS
// (default /tmp/buddyrec-artifacts) and returns its path.
func SaveArtifact(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := artifactPath(t, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artefact: %s", p)
	return p
}

// artifactPath is where the test artefact name goes: $BUDDYREC_ARTIFACTS,
// else the temp dir's buddyrec-artifacts, made if needed.
func artifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("BUDDYREC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "buddyrec-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}
