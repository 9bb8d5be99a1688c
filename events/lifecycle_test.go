package events

import (
	"path/filepath"
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close ends Run, is idempotent and safe before Run.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		l, err := Open(filepath.Join(t.TempDir(), "events.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return testutil.Part{Run: l.Run, Close: l.Close}
	})
}
