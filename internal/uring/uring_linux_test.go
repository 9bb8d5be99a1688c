//go:build linux

package uring

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func newRing(t *testing.T, entries int) *Ring {
	t.Helper()
	r, err := New(entries)
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func TestFdatasync(t *testing.T) {
	dir := t.TempDir()
	var files []*os.File
	for i := range 40 {
		f, err := os.Create(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// no such descriptor: the kernel's answer must reach its caller
	const badFD = -1

	for _, tc := range []struct {
		name              string
		entries, parallel int
		files             int
	}{
		{"one at a time", 8, 1, 5},
		{"within the ring", 64, 64, 40},
		{"more files than entries", 8, 8, 40},
		{"parallel above the ring", 4, 100, 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(t, tc.entries)
			fds := make([]int, 0, tc.files+1)
			for _, f := range files[:tc.files] {
				fds = append(fds, int(f.Fd()))
			}
			fds = append(fds, badFD)
			errs := make([]error, len(fds))
			if err := r.Fdatasync(fds, errs, tc.parallel); err != nil {
				t.Fatalf("Fdatasync: %v", err)
			}
			for i, err := range errs[:tc.files] {
				if err != nil {
					t.Errorf("file %d: %v", i, err)
				}
			}
			if !errors.Is(errs[tc.files], unix.EBADF) {
				t.Errorf("bad descriptor: %v, want EBADF", errs[tc.files])
			}
			// the ring is reusable: a second round on the same ring
			if err := r.Fdatasync(fds[:1], errs, tc.parallel); err != nil || errs[0] != nil {
				t.Fatalf("second round: %v, %v", err, errs[0])
			}
		})
	}
}

func TestClosedRing(t *testing.T) {
	r := newRing(t, 4)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Fdatasync([]int{0}, make([]error, 1), 1); err == nil {
		t.Fatal("Fdatasync on a closed ring succeeded")
	}
}
