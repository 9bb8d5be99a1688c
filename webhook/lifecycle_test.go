package webhook

import (
	"path/filepath"
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close ends Run (and its senders), is idempotent and safe
// before Run.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		ob, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{Targets: []Target{
			{Name: "psim", URL: "http://127.0.0.1:1/hooks", Secret: testSecret},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return testutil.Part{Run: ob.Run, Close: ob.Close}
	})
}
