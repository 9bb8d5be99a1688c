package testutil

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/buddyrec/buddyrec/camsim"
)

// Cameras starts simulated RTSP cameras for the test and stops them when
// it ends. Listen defaults to a free port on 127.0.0.1 and ClipDir to the
// module's testdata folder, so a test in any package writes only what it
// is about: how many cameras, which codec, which faults.
func Cameras(t testing.TB, o camsim.Options) *camsim.Server {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.ClipDir == "" {
		o.ClipDir = TestData(t)
	}
	cams, err := camsim.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("simulated cameras: %v", err)
	}
	t.Cleanup(cams.Close)
	return cams
}

// TestData is the module's testdata folder: the nearest parent of the
// test's folder holding go.mod, joined with "testdata".
func TestData(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
