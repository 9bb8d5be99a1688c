//go:build linux

package uring

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkRound makes a sync round of 25 files (a worker's cameras),
// each grown by a 32 KiB part first, through a ring and with one
// goroutine per fdatasync as before, and reports the process's CPU per
// round (user + system, every thread's, the kernel's io-wq threads
// included) beside the wall time, which is the disk's. Run it on one P
// as a worker runs:
//
//	go test ./internal/uring -run '^$' -bench Round -cpu 1 -benchtime 200x
func BenchmarkRound(b *testing.B) {
	const files = 25
	part := make([]byte, 32<<10)
	for _, mode := range []string{"ring", "goroutines"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			fs := make([]*os.File, files)
			fds := make([]int, files)
			for i := range fs {
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("seg%d.mp4", i)))
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				fs[i], fds[i] = f, int(f.Fd())
			}
			var r *Ring
			if mode == "ring" {
				var err error
				if r, err = New(64); err != nil {
					b.Skipf("no io_uring: %v", err)
				}
				defer r.Close()
			}
			errs := make([]error, files)
			before := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				for _, f := range fs {
					if _, err := f.Write(part); err != nil {
						b.Fatal(err)
					}
				}
				if r != nil {
					if err := r.Fdatasync(fds, errs, 64); err != nil {
						b.Fatal(err)
					}
				} else {
					var wg sync.WaitGroup
					for i, f := range fs {
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs[i] = unix.Fdatasync(int(f.Fd()))
						}()
					}
					wg.Wait()
				}
				for i, err := range errs {
					if err != nil {
						b.Fatalf("file %d: %v", i, err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/round")
		})
	}
}

// cpuTime is the CPU the process has used so far, every thread's.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
