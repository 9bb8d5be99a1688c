package testutil

import (
	"context"
	"testing"
	"time"
)

// Part is one long-lived part made for CheckLifecycle: Run is nil for a
// part without one (its work runs on demand or from Start); Close is the
// part's Close, wrapped to return nil when it returns nothing.
type Part struct {
	Run   func(context.Context) error
	Close func() error
}

// CheckLifecycle holds the part newPart builds to the shape written down
// in package node ("Lifecycle of long-lived parts"): Close may come before
// Run, or without Run at all, and is idempotent; Close ends a Run that is
// running; Run called after Close returns at once. newPart is called once
// per case, each part built fresh. A wait longer than a minute is a hang,
// reported as such, never a timing assertion.
func CheckLifecycle(t *testing.T, newPart func(t *testing.T) Part) {
	t.Helper()
	t.Run("close before run", func(t *testing.T) {
		p := newPart(t)
		closeTwice(t, p)
		if p.Run != nil {
			waitRun(t, "Run called after Close", runAsync(p))
		}
	})
	t.Run("close ends run", func(t *testing.T) {
		p := newPart(t)
		if p.Run == nil {
			t.Skip("no Run")
		}
		done := runAsync(p)
		closeTwice(t, p)
		waitRun(t, "Run after Close", done)
	})
}

func runAsync(p Part) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	return done
}

func closeTwice(t *testing.T, p Part) {
	t.Helper()
	for i, what := range []string{"Close", "second Close"} {
		done := make(chan error, 1)
		go func() { done <- p.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s (call %d) hangs", what, i+1)
		}
	}
}

func waitRun(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s has not returned", what)
	}
}
