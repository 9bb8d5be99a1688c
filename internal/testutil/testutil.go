// Package testutil holds helpers shared by buddyrec's tests.
package testutil

import (
	"os"
	"os/exec"
	"testing"
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
