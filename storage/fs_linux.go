package storage

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// maxIOV is how many buffers one writev takes (IOV_MAX on Linux).
const maxIOV = 1024

// writeBuffers writes bufs to f with writev, going on after a short write.
func writeBuffers(f *os.File, bufs [][]byte) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	// a copy of the slice headers: a short write is resumed by cutting
	// these, never the caller's
	rest := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		if len(b) > 0 {
			rest = append(rest, b)
		}
	}
	var total int64
	for len(rest) > 0 {
		iov := rest[:min(len(rest), maxIOV)]
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = unix.Writev(int(fd), iov)
				if werr != unix.EINTR {
					return true
				}
			}
		}); err != nil {
			return total, &os.PathError{Op: "writev", Path: f.Name(), Err: err}
		}
		if werr != nil {
			return total, &os.PathError{Op: "writev", Path: f.Name(), Err: werr}
		}
		if n <= 0 {
			return total, &os.PathError{Op: "writev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		total += int64(n)
		for n > 0 {
			if n >= len(rest[0]) {
				n -= len(rest[0])
				rest = rest[1:]
				continue
			}
			rest[0] = rest[0][n:]
			n = 0
		}
	}
	return total, nil
}
