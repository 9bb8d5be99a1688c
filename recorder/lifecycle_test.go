package recorder

import (
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close is idempotent, and Set after Close starts nothing.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		m := NewManager(ManagerOptions{Sink: nil})
		return testutil.Part{Close: func() error {
			m.Close()
			m.Set([]Camera{{ID: "rec-a/lobby", URL: "rtsp://127.0.0.1:1/lobby"}})
			if st := m.Status(); len(st) != 0 {
				t.Errorf("Set after Close started %v", st)
			}
			return nil
		}}
	})
}
