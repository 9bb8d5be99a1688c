package relay

import (
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close is idempotent, and a subscription after Close is
// closed at once rather than left waiting.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		s := NewSite(Options{})
		return testutil.Part{Close: func() error {
			s.Close()
			ch, cancel := s.Subscribe("rec-a/lobby", 1)
			defer cancel()
			if _, open := <-ch; open {
				t.Error("a subscription after Close delivered a frame")
			}
			return nil
		}}
	})
}
