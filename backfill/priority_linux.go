package backfill

import (
	"errors"

	"golang.org/x/sys/unix"
)

// lowerThreadPriority puts the calling OS thread (locked by the caller) at
// nice 19 and the lowest best-effort I/O priority: the copy only gets the
// CPU and disk recording leaves. On Linux both apply per thread.
func lowerThreadPriority() error {
	tid := unix.Gettid()
	err := unix.Setpriority(unix.PRIO_PROCESS, tid, 19)
	const (
		ioprioWhoProcess = 1
		ioprioClassBE    = 2
		ioprioClassShift = 13
	)
	_, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassBE<<ioprioClassShift|7)
	if errno != 0 {
		err = errors.Join(err, errno)
	}
	return err
}
