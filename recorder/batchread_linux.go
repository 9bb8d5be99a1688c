package recorder

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

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

// readNow reads what the socket holds into p, without waiting:
// errWouldBlock when it holds nothing. The read is a raw read(2), which
// skips the runtime's system call bookkeeping: the first system call of a
// process woken from idle wakes its sysmon thread, which then polls every
// 20 µs for as long as the process is busy (golang/go#18236), so a worker
// whose cameras are read once per tick paid dozens of sysmon wake-ups per
// tick for reads that never block (the socket is non-blocking). The read
// deadline and Close are checked first, as for any read.
func (c *batchedConn) readNow(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.rawRead == nil {
		// bound once: a closure per read cost an allocation per read
		c.rawRead = c.readFD
	}
	c.rp, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.rawRead)
	n, rerr := c.rn, c.rerr
	c.rp, c.rerr = nil, nil
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// readFD is readNow's read of the socket's descriptor.
func (c *batchedConn) readFD(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rp[0])), uintptr(len(c.rp)))
		switch e {
		case 0:
			c.rn = int(r)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			c.rerr = errWouldBlock
		default:
			c.rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", e)}
		}
		return true
	}
}
