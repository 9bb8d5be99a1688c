package recorder

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

func TestDebugX(t *testing.T) {
	srv := startCams(t, 1, "h264", nil)
	m := NewManager(ManagerOptions{Sink: newFakeSink(), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer m.Close()
	m.Set([]Camera{{ID: "a/x", URL: srv.URL(1)}})
	time.Sleep(1500 * time.Millisecond)
}
