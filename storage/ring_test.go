package storage

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeRing is a fileSyncer whose answer per file descriptor the test
// sets: nil, an errno, or (with fail set) the ring's own failure.
type fakeRing struct {
	answer func(fd int) error
	fail   error

	mu     sync.Mutex
	fds    []int
	closed bool
}

func (r *fakeRing) Fdatasync(fds []int, errs []error, parallel int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fds = append(r.fds, fds...)
	for k, fd := range fds {
		errs[k] = r.answer(fd)
	}
	return r.fail
}

func (r *fakeRing) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// TestSyncRoundThroughRing checks what a round does with the ring's
// answers: an errno fails that segment alone (alarmed, not indexed past
// what was durable), and a failure of the ring itself leaves every file
// whose sync did not complete to fdatasync, and the ring unused from then
// on.
func TestSyncRoundThroughRing(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	samples := c.stream(testEpoch, 1, true)
	ringDown := errors.New("io_uring_enter: the ring is gone")
	const cameras = 3
	for _, tc := range []struct {
		name string
		// answer per camera (0-based) of the ring; closeFile closes that
		// camera's file before the round, so that fdatasync of it fails
		answer    func(cam int) error
		fail      error
		closeFile int
		// the alarm expected per camera ("" none), as a substring
		wantAlarm   [cameras]string
		wantRingUse bool // the ring is still the round's after it
	}{
		{
			name:        "all synced",
			answer:      func(int) error { return nil },
			closeFile:   -1,
			wantRingUse: true,
		},
		{
			name: "an errno fails that segment",
			answer: func(cam int) error {
				if cam == 1 {
					return unix.EIO
				}
				return nil
			},
			closeFile:   -1,
			wantAlarm:   [cameras]string{1: "fdatasync"},
			wantRingUse: true,
		},
		{
			name: "the ring fails: the rest is synced by fdatasync",
			answer: func(cam int) error {
				if cam == 0 {
					return nil
				}
				return ringDown
			},
			fail: ringDown,
			// cam3's fdatasync must be made, and fail, for its alarm
			closeFile: 2,
			wantAlarm: [cameras]string{2: "bad file descriptor"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			alarms := map[string]string{}
			st := openTestStore(t, t.TempDir(), func(o *Options) {
				o.SyncInterval = time.Hour // the test's rounds only
				o.Segment = time.Hour
				o.OnAlarm = func(a Alarm) {
					mu.Lock()
					defer mu.Unlock()
					if a.Camera != "" {
						alarms[a.Camera] += a.Err
					}
				}
			})
			var ws []*Writer
			cams := map[int]int{} // fd -> camera
			for i := range cameras {
				w, err := st.Begin(Stream{Camera: fmt.Sprintf("rec-a/cam%d", i+1), Home: "rec-a", Tracks: c.tracks(true)})
				if err != nil {
					t.Fatal(err)
				}
				writeAll(t, w, samples)
				ws = append(ws, w)
				cams[int(w.seg.f.(osFile).Fd())] = i
			}
			if tc.closeFile >= 0 {
				ws[tc.closeFile].seg.f.(osFile).File.Close()
				cams[-1] = tc.closeFile // what a closed file's Fd is
			}
			ring := &fakeRing{answer: func(fd int) error {
				cam, ok := cams[fd]
				if !ok {
					return fmt.Errorf("fd %d is no segment's", fd)
				}
				return tc.answer(cam)
			}, fail: tc.fail}
			st.sync.roundMu.Lock()
			if st.sync.ring != nil {
				st.sync.ring.Close()
			}
			st.sync.ring = ring
			st.sync.roundMu.Unlock()

			if err := st.Sync(); err != nil {
				t.Fatal(err)
			}
			if len(ring.fds) != cameras {
				t.Errorf("the ring was given %d files, want %d", len(ring.fds), cameras)
			}
			st.sync.roundMu.Lock()
			inUse := st.sync.ring == ring
			st.sync.roundMu.Unlock()
			if inUse != tc.wantRingUse {
				t.Errorf("ring still in use after the round: %v, want %v", inUse, tc.wantRingUse)
			}
			if !tc.wantRingUse && !ring.closed {
				t.Error("the failed ring was not closed")
			}
			mu.Lock()
			for i := range cameras {
				got := alarms[fmt.Sprintf("rec-a/cam%d", i+1)]
				switch want := tc.wantAlarm[i]; {
				case want == "" && got != "":
					t.Errorf("cam%d: alarm %q, want none", i+1, got)
				case want != "" && !strings.Contains(got, want):
					t.Errorf("cam%d: alarm %q, want one saying %q", i+1, got, want)
				}
			}
			mu.Unlock()
			for i, w := range ws {
				if tc.wantAlarm[i] != "" {
					if !w.seg.sf.failed.Load() {
						t.Errorf("cam%d: segment not marked failed after its sync failed", i+1)
					}
					continue
				}
				if segs := allSegments(t, st, fmt.Sprintf("rec-a/cam%d", i+1)); len(segs) == 0 {
					t.Errorf("cam%d: nothing indexed after a good sync", i+1)
				}
			}
			for _, w := range ws {
				w.Close() //nolint:errcheck // failed segments fail their close too
			}
		})
	}
}

// TestStoreSyncMethod checks which sync rounds a store of the operating
// system's files gets for each sync method, on this kernel and on one
// that refuses io_uring; what the ring does is internal/uring's test.
func TestStoreSyncMethod(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("io_uring is Linux's")
	}
	// the cases that open a real ring need a kernel that allows it; the
	// rest (fdatasync, a refusing kernel stood in, a bad method) run anywhere
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	kernelRefuses := err == nil && strings.TrimSpace(string(b)) != "0"
	refused := func(int) (fileSyncer, error) { return nil, unix.EPERM }
	for _, tc := range []struct {
		name     string
		method   SyncMethod
		openRing func(int) (fileSyncer, error)
		ring     bool   // the store syncs through a ring
		err      string // Open fails with this
	}{
		{name: "default", method: "", ring: true},
		{name: "auto", method: SyncAuto, ring: true},
		{name: "io_uring", method: SyncIOURing, ring: true},
		{name: "fdatasync", method: SyncFdatasync, ring: false},
		{name: "auto, refused", method: SyncAuto, openRing: refused, ring: false},
		{name: "io_uring, refused", method: SyncIOURing, openRing: refused, err: `sync_method "io_uring": the kernel refuses io_uring: operation not permitted`},
		{name: "unknown", method: "aio", err: `unknown sync method "aio"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ring && tc.openRing == nil && kernelRefuses {
				t.Skip("io_uring disabled on this machine")
			}
			opts := Options{Dir: t.TempDir(), Server: "rec-a", SyncMethod: tc.method, openRing: tc.openRing}
			st, err := Open(opts)
			if tc.err != "" {
				if err == nil {
					st.Close()
					t.Fatalf("Open: no error, want %q", tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open: %v, want %q", err, tc.err)
				}
				// the index is closed again: another store opens it
				again, err := Open(Options{Dir: opts.Dir, Server: "rec-a"})
				if err != nil {
					t.Fatalf("Open after a refused open: %v", err)
				}
				again.Close()
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.sync.roundMu.Lock()
			has := st.sync.ring != nil
			st.sync.roundMu.Unlock()
			if has != tc.ring {
				t.Errorf("syncs through a ring: %v, want %v", has, tc.ring)
			}
		})
	}
}
