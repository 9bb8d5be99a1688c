package storage

import (
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close ends Run, is idempotent and safe before Run.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		s, err := Open(Options{Dir: t.TempDir(), Server: "rec-a"})
		if err != nil {
			t.Fatal(err)
		}
		return testutil.Part{Run: s.Run, Close: s.Close}
	})
}
