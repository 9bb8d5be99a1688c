package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/live"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/view"
	"github.com/buddyrec/buddyrec/webhook"
)

// part is one long-lived part as TestLifecycle drives it: run is nil for a
// part without Run (its work runs on demand, or from Start); close is its
// Close, wrapped to return nil when it returns nothing, followed by what
// must hold after it.
type part struct {
	run   func(context.Context) error
	close func() error
}

// TestLifecycle holds every long-lived part to the shape written down in
// doc.go: Close may come before Run, or without Run at all, and is
// idempotent; Close ends a Run that is running; Run called after Close
// returns at once; after Close nothing new starts.
func TestLifecycle(t *testing.T) {
	parts := []struct {
		name string
		make func(t *testing.T) part
	}{
		{"node", func(t *testing.T) part {
			dir := t.TempDir()
			src := fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = \"127.0.0.1:0\"\n", dir)
			cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), src)
			if err != nil {
				t.Fatal(err)
			}
			n, err := New(Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			return part{run: n.Run, close: func() error {
				if err := n.Close(); err != nil {
					return err
				}
				// Everything New took is released: the data_dir lock too.
				again, err := New(Options{Config: cfg})
				if err != nil {
					return fmt.Errorf("New after Close: %w", err)
				}
				return again.Close()
			}}
		}},
		{"buddy", func(t *testing.T) part {
			ctx, cancel := context.WithCancel(context.Background())
			c, err := buddy.Start(ctx, buddy.Options{Name: "rec-a", BindAddr: "127.0.0.1:0", Insecure: true, StateDir: t.TempDir()})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			// The end of Start's ctx, then Close, both stop it.
			return part{close: func() error { cancel(); return c.Close() }}
		}},
		{"live", func(t *testing.T) part {
			rec := recorder.NewManager(recorder.ManagerOptions{})
			t.Cleanup(rec.Close)
			ctx, cancel := context.WithCancel(context.Background())
			s, err := live.Start(ctx, live.Options{Listen: "127.0.0.1:0", Source: rec})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			return part{close: func() error { cancel(); s.Close(); return nil }}
		}},
		{"recorder", func(t *testing.T) part {
			m := recorder.NewManager(recorder.ManagerOptions{})
			return part{close: func() error {
				m.Close()
				m.Set([]recorder.Camera{{ID: "rec-a/lobby", Home: "rec-a", URL: "rtsp://127.0.0.1:1/lobby"}})
				if st := m.Status(); len(st) != 0 {
					return fmt.Errorf("Set after Close started %v", st)
				}
				return nil
			}}
		}},
		{"relay", func(t *testing.T) part {
			s := relay.NewSite(relay.Options{})
			return part{close: func() error {
				s.Close()
				ch, cancel := s.Subscribe("rec-a/lobby", 1)
				defer cancel()
				if _, open := <-ch; open {
					return fmt.Errorf("a subscription after Close delivered a frame")
				}
				return nil
			}}
		}},
		{"view", func(t *testing.T) part {
			s := view.New(view.Options{})
			return part{close: func() error { s.Close(); return nil }}
		}},
		{"webhook", func(t *testing.T) part {
			ob, err := webhook.Open(filepath.Join(t.TempDir(), "outbox.db"), webhook.Options{Targets: []webhook.Target{
				{Name: "psim", URL: "http://127.0.0.1:1/hooks", Secret: "whsec_dGVzdC1zaWduaW5nLWtleS0xMjM0NTY3ODkw"},
			}})
			if err != nil {
				t.Fatal(err)
			}
			return part{run: ob.Run, close: ob.Close}
		}},
		{"events", func(t *testing.T) part {
			l, err := events.Open(filepath.Join(t.TempDir(), "events.db"), events.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return part{run: l.Run, close: l.Close}
		}},
		{"storage", func(t *testing.T) part {
			s, err := storage.Open(storage.Options{Dir: t.TempDir(), Server: "rec-a"})
			if err != nil {
				t.Fatal(err)
			}
			return part{run: s.Run, close: s.Close}
		}},
	}
	for _, p := range parts {
		t.Run(p.name, func(t *testing.T) {
			before := p.make(t)
			closeTwice(t, before)
			if before.run == nil {
				return
			}
			awaitRun(t, "Run called after Close", runAsync(before))
			running := p.make(t)
			done := runAsync(running)
			closeTwice(t, running)
			awaitRun(t, "Run when Close came", done)
		})
	}
}

func runAsync(p part) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.run(context.Background()) }()
	return done
}

// closeTwice calls Close twice; a call that takes a minute is a hang,
// reported as such, never a timing assertion.
func closeTwice(t *testing.T, p part) {
	t.Helper()
	for _, what := range []string{"Close", "second Close"} {
		done := make(chan error, 1)
		go func() { done <- p.close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s hangs", what)
		}
	}
}

func awaitRun(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s has not returned", what)
	}
}
