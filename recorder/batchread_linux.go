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

// pollState is readNow's state: the read's vector and outcome, kept in
// the conn so that a read allocates nothing.
type pollState struct {
	rawRead func(fd uintptr) bool
	iov     [2]syscall.Iovec
	rn      int
	rerr    error
}

// readNow reads what the socket holds into p and, beyond it, into c's
// spill buffer, without waiting: errWouldBlock when it holds nothing. It
// returns the bytes read (what is beyond p is c.spilled, for the Reads
// that follow), and whether the read filled all it offered, so that the
// socket may hold more. Nothing may be spilled when it is called.
//
// The read is one raw readv(2), which skips the runtime's system call
// bookkeeping: the first system call of a process woken from idle wakes
// its sysmon thread, which then polls every 20 µs for as long as the
// process is busy (golang/go#18236), so a worker whose cameras are read
// once per tick paid dozens of sysmon wake-ups per tick for reads that
// never block (the socket is non-blocking). The read deadline and Close
// are checked first, as for any read.
func (c *batchedConn) readNow(p []byte) (total int, full bool, err error) {
	if len(p) == 0 {
		return 0, true, nil
	}
	st := &c.poll
	if st.rawRead == nil {
		// bound once: a closure per read cost an allocation per read
		st.rawRead = c.readFD
	}
	spill := c.holdSpill()
	st.iov[0].Base, st.iov[1].Base = &p[0], &spill[0]
	st.iov[0].SetLen(len(p))
	st.iov[1].SetLen(len(spill))
	st.rn, st.rerr = 0, nil
	err = c.raw.Read(st.rawRead)
	total, rerr := st.rn, st.rerr
	// keep nothing alive: the caller's buffer, nor a spill buffer the
	// grid may drop once it is back
	st.iov[0].Base, st.iov[1].Base, st.rerr = nil, nil, nil
	switch {
	case err != nil:
	case rerr != nil:
		err = rerr
	case total == 0:
		err = io.EOF
	}
	if err != nil || total <= len(p) {
		c.releaseSpill()
		if err != nil {
			return 0, false, err
		}
		return total, total == len(p)+len(spill), nil
	}
	c.spilled = spill[:total-len(p)]
	return total, total == len(p)+len(spill), nil
}

// readFD is readNow's read of the socket's descriptor.
func (c *batchedConn) readFD(fd uintptr) bool {
	st := &c.poll
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READV, fd, uintptr(unsafe.Pointer(&st.iov[0])), uintptr(len(st.iov)))
		switch e {
		case 0:
			st.rn = int(r)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			st.rerr = errWouldBlock
		default:
			st.rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("readv", e)}
		}
		return true
	}
}
