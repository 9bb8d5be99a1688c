package buddy

import (
	"context"
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close is idempotent; ending Start's context is the same
// stop path.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := Start(ctx, testOpts(t, newLogSink(t), "rec-a"))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return testutil.Part{Close: func() error {
			cancel() // the context's end, then Close, must both stop it
			return c.Close()
		}}
	})
}
