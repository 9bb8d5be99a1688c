package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// appendAlarms appends n alarms and fails on any error.
func appendAlarms(t *testing.T, l *Log, n int, tag string) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(Event{Type: TypeDiskFull, Severity: SeverityAlarm, Text: fmt.Sprintf("%s %d", tag, i)}); err != nil {
			t.Fatalf("append %s %d: %v", tag, i, err)
		}
	}
}

// countOnDisk reopens the file and counts the events with the tag.
func countOnDisk(t *testing.T, path, tag string) int {
	t.Helper()
	l, err := Open(path, Options{Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return countListed(t, l, tag)
}

func countListed(t *testing.T, l *Log, tag string) int {
	t.Helper()
	evs, _, err := l.List(time.Time{}, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		var x int
		var s string
		if _, err := fmt.Sscanf(e.Text, "%s %d", &s, &x); err == nil && s == tag {
			n++
		}
	}
	return n
}

// fill writes a file until the disk is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// and the last few bytes
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
}

// TestAlarmsSurviveFullDisk: with the disk full, 30 alarms are appended;
// none is lost (the reserve gives the file room), all are on disk.
func TestAlarmsSurviveFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "4m")
	path := filepath.Join(dir, "events.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendAlarms(t, l, 5, "before")
	fill(t, dir)
	appendAlarms(t, l, 30, "full")
	if n := countListed(t, l, "full"); n != 30 {
		t.Errorf("%d of 30 alarms listed on the full disk", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countOnDisk(t, path, "full"); n != 30 {
		t.Errorf("%d of 30 alarms on disk after the full disk", n)
	}
}

// TestAlarmsHeldWhileFileBroken breaks the bolt file under the log (its
// descriptor closed, as a file system gone bad leaves it): appends still
// succeed and are listed, and once Maintain reopens the file they are
// written to it.
func TestAlarmsHeldWhileFileBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	var mu sync.Mutex
	var files []*os.File
	l, err := Open(path, Options{Reserve: -1, openFile: func(p string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(p, flag, mode)
		mu.Lock()
		files = append(files, f)
		mu.Unlock()
		return f, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	appendAlarms(t, l, 3, "before")
	mu.Lock()
	files[0].Close() // the file goes bad under bolt
	mu.Unlock()
	appendAlarms(t, l, 23, "broken")
	if n := countListed(t, l, "broken"); n != 23 {
		t.Errorf("%d of 23 alarms listed while the file is broken", n)
	}
	evs, _, _ := l.List(time.Time{}, "", 1)
	if err := l.Ack(evs[0].ID, "tech"); err != nil {
		t.Errorf("ack of a held alarm: %v", err)
	}
	l.Maintain()
	if l.db.Broken() {
		t.Fatal("file not reopened")
	}
	appendAlarms(t, l, 2, "after")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countOnDisk(t, path, "broken"); n != 23 {
		t.Errorf("%d of 23 alarms on disk after the reopen", n)
	}
	if n := countOnDisk(t, path, "after"); n != 2 {
		t.Errorf("%d of 2 later alarms on disk", n)
	}
	l2, _ := Open(path, Options{Reserve: -1})
	defer l2.Close()
	if e, err := l2.Get(evs[0].ID); err != nil || !e.Acked {
		t.Errorf("acknowledgement of the held alarm lost: %+v %v", e, err)
	}
}
