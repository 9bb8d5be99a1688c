package live

import (
	"context"
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/recorder"
)

// TestLifecycle: Close is idempotent; ending Start's context is the same
// stop path.
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		rec := recorder.NewManager(recorder.ManagerOptions{Sink: &countSink{}})
		t.Cleanup(rec.Close)
		ctx, cancel := context.WithCancel(context.Background())
		s, err := Start(ctx, Options{Listen: "127.0.0.1:0", Source: rec})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return testutil.Part{Close: func() error {
			cancel() // the context's end, then Close, must both stop it
			s.Close()
			return nil
		}}
	})
}
