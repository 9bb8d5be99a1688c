package recorder

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setRcvLowat sets SO_RCVLOWAT: Linux (since 4.18) wakes a TCP reader
// only once that many bytes are queued, or at a FIN, an error or memory
// pressure, so nothing is stranded when the camera closes.
func setRcvLowat(raw syscall.RawConn, n int) error {
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}
