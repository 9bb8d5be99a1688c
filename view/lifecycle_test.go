package view

import (
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close is idempotent, and no hub starts after it.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		s := New(Options{})
		return testutil.Part{Close: func() error {
			s.Close()
			if h := s.join("rec-a/lobby", &viewer{}); h != nil {
				t.Error("a hub started after Close")
			}
			return nil
		}}
	})
}
