package webhook

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestOutboxReopenedAfterFileFailure breaks outbox.db under bbolt (its
// descriptor closed, as a file system gone bad and remounted leaves it):
// notices enqueued afterwards are neither refused nor lost, and every one
// is delivered, in order, without a restart.
func TestOutboxReopenedAfterFileFailure(t *testing.T) {
	r := newReceiver(t, testSecret)
	var mu sync.Mutex
	var files []*os.File
	o := fast(Options{Targets: []Target{{Name: "psim", URL: r.srv.URL + "/hooks", Secret: testSecret}}})
	o.openFile = func(p string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(p, flag, mode)
		mu.Lock()
		files = append(files, f)
		mu.Unlock()
		return f, err
	}
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), o)
	// The senders start after the break: bbolt's file is used by one
	// goroutine at a time, as the race detector wants.
	const n = 10
	for i := range n {
		if i == n/2 {
			mu.Lock()
			files[0].Close() // the file goes bad under bbolt
			mu.Unlock()
		}
		if err := ob.Enqueue(notice(i)); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	run(t, ob)
	for j := range n {
		if got := seqOf(t, r.next(t)); got != j {
			t.Fatalf("delivery %d carries notice %d", j, got)
		}
	}
	mu.Lock()
	opened := len(files)
	mu.Unlock()
	if opened < 2 {
		t.Errorf("outbox.db opened %d times: never reopened", opened)
	}
}
