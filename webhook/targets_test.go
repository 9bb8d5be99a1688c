package webhook

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestSetTargets: a running outbox takes new targets (a config reload): an
// unchanged target keeps its sender and counters, an added one is sent
// what is enqueued from then on, a removed one gets nothing more and its
// pending notices stay on disk for its return, and a target whose URL
// changed gets its pending notices at the new URL.
func TestSetTargets(t *testing.T) {
	a, b, moved := newReceiver(t, testSecret), newReceiver(t, testSecret), newReceiver(t, testSecret)
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets: []Target{{Name: "psim1", URL: a.srv.URL, Secret: testSecret}},
	}))
	run(t, ob)
	enqueue := func(i int) {
		t.Helper()
		if err := ob.Enqueue(notice(i)); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(1)
	if d := a.next(t); seqOf(t, d) != 1 {
		t.Fatalf("psim1 got %q first", d.Notice.Text)
	}

	if err := ob.SetTargets([]Target{{Name: "psim1", URL: a.srv.URL, Secret: testSecret}, {Name: "psim2", URL: b.srv.URL, Secret: testSecret}}); err != nil {
		t.Fatal(err)
	}
	enqueue(2)
	if d := a.next(t); seqOf(t, d) != 2 {
		t.Fatalf("psim1 got %q, want notice 2", d.Notice.Text)
	}
	if d := b.next(t); seqOf(t, d) != 2 {
		t.Fatalf("added psim2 got %q, want notice 2", d.Notice.Text)
	}
	// The receiver answers before the sender counts the delivery.
	testutil.EventuallyMsg(t, 5*time.Second, func() string {
		if st := ob.Stats(); len(st) != 2 || st[0].Delivered != 2 || st[1].Delivered != 1 {
			return fmt.Sprintf("stats after adding psim2: %+v, want psim1's counters kept (2) and psim2 at 1", st)
		}
		return ""
	})

	// psim1 goes away; psim2 fails (500) so its notices queue.
	b.code.Store(500)
	if err := ob.SetTargets([]Target{{Name: "psim2", URL: b.srv.URL, Secret: testSecret}}); err != nil {
		t.Fatal(err)
	}
	enqueue(3)
	time.Sleep(200 * time.Millisecond)
	if n := len(a.Attempts()); n != 2 {
		t.Errorf("removed psim1 was tried %d times, want its 2 deliveries from before only", n)
	}
	// psim2 moves: the queued notice goes to the new URL.
	if err := ob.SetTargets([]Target{{Name: "psim2", URL: moved.srv.URL, Secret: testSecret}}); err != nil {
		t.Fatal(err)
	}
	if d := moved.next(t); seqOf(t, d) != 3 {
		t.Fatalf("moved psim2 got %q, want the pending notice 3", d.Notice.Text)
	}
	if st := ob.Stats(); len(st) != 1 || st[0].Name != "psim2" || st[0].URL != SafeURL(moved.srv.URL) {
		t.Errorf("stats: %+v, want psim2 at its new URL only", st)
	}
	// An invalid target is reported and skipped, as at Open.
	if err := ob.SetTargets([]Target{{Name: "psim2", URL: moved.srv.URL, Secret: testSecret}, {Name: "psim3", URL: "ftp://x", Secret: testSecret}}); err != nil {
		t.Fatal(err)
	}
	if st := ob.Stats(); len(st) != 2 || !st[1].Disabled {
		t.Errorf("stats with an invalid target: %+v", st)
	}
}
