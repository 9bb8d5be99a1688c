package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/site"
)

// ioURingFDs counts the io_uring instances process pid holds, as the
// kernel shows its descriptors.
func ioURingFDs(pid int) (int, error) {
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == "anon_inode:[io_uring]" {
			n++
		}
	}
	return n, nil
}

// [storage] sync_method reaches every process that syncs footage: by
// default the supervisor and each worker sync through an io_uring of
// their own (on a kernel that allows it), with "fdatasync" none holds
// one, and either way the footage is indexed, which happens only once
// its files were synced.
func TestSyncMethodReachesEveryProcess(t *testing.T) {
	t.Parallel() // a process test: mostly waiting (see process_test.go)
	// kernel.io_uring_disabled (Linux 6.6 on) other than 0 forbids or
	// restricts io_uring; without the knob nothing does
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	ringAllowed := os.IsNotExist(err) || err == nil && string(b) == "0\n"
	for _, tc := range []struct {
		name, storage string
		ring          bool
	}{
		{"default", "", true},
		{"fdatasync", "sync_method = \"fdatasync\"\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ring && !ringAllowed {
				t.Skip("the kernel forbids io_uring here (kernel.io_uring_disabled): the default falls back to fdatasync")
			}
			c := startCameras(t, 2, nil)
			s := startSite(t, site.Spec{Servers: []site.ServerSpec{
				{Name: "rec-a", Cameras: cams(c, 1, 2), Storage: tc.storage, Extra: "[recorder]\ncameras_per_worker = 1\n"},
			}})
			a := s.Server("rec-a")
			killWorkersAfter(t, a)
			both := []string{"rec-a/cam1", "rec-a/cam2"}
			eventually(t, 30*time.Second, recordsExactly(a, both...))
			time.Sleep(2 * time.Second) // past the first keyframe
			from := time.Now()
			time.Sleep(3 * time.Second)
			to := indexedTo(t, a, both...)
			for _, id := range both {
				if gaps := gapsOf(t, a, id, from, to); len(gaps) > 0 {
					t.Errorf("%s: gaps %+v", id, gaps)
				}
			}
			ws, err := workersOf(a.DataDir)
			if err != nil || len(ws) != 2 {
				t.Fatalf("want 2 workers, got %+v (%v)", ws, err)
			}
			procs := map[string]int{"supervisor": a.Pid()}
			for _, w := range ws {
				procs[fmt.Sprintf("worker %d", w.ID)] = w.PID
			}
			for name, pid := range procs {
				n, err := ioURingFDs(pid)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := n > 0; got != tc.ring {
					t.Errorf("%s (pid %d) holds %d io_uring instances; want io_uring: %v", name, pid, n, tc.ring)
				}
			}
		})
	}
}
