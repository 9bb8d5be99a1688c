//go:build linux

package uring

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's ABI (include/uapi/linux/io_uring.h), the part used here.
const (
	opFsync       = 3          // IORING_OP_FSYNC
	fsyncDatasync = 1          // IORING_FSYNC_DATASYNC
	offSQRing     = 0          // IORING_OFF_SQ_RING
	offCQRing     = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs       = 0x10000000 // IORING_OFF_SQES
	registerEvtFD = 4          // IORING_REGISTER_EVENTFD
	sqeSize       = 64         // sizeof(struct io_uring_sqe)
	cqeSize       = 16         // sizeof(struct io_uring_cqe)
)

// maxReapTimeout is how long a wait for completions lasts before the
// ring is looked at again without the eventfd's word.
const maxReapTimeout = time.Second

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe as an fsync uses it.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	fsyncFlags  uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad         uint64
}

// cqe is struct io_uring_cqe.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Ring is one io_uring instance with an eventfd the Go runtime's poller
// watches. Its methods may be called from several goroutines; one call
// runs at a time.
type Ring struct {
	mu      sync.Mutex
	fd      int
	entries uint32
	sqRing  []byte
	cqRing  []byte
	sqeMem  []byte
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqArray unsafe.Pointer // uint32 per entry
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    unsafe.Pointer // cqe per entry
	event   *os.File       // the eventfd: readable once a completion is posted
	buf     [8]byte
	closed  bool
}

// New sets up a ring of the given number of submission entries (rounded
// up to a power of two by the kernel). It fails where the kernel has no
// io_uring or forbids it (kernel.io_uring_disabled, a seccomp filter):
// callers then make the system calls themselves.
func New(entries int) (*Ring, error) {
	var p params
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &Ring{fd: int(fd), entries: p.sqEntries}
	fail := func(op string, err error) (*Ring, error) {
		r.release()
		return nil, fmt.Errorf("io_uring %s: %w", op, err)
	}
	var err error
	prot, flags := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE
	if r.sqRing, err = unix.Mmap(r.fd, offSQRing, int(p.sqOff.array+p.sqEntries*4), prot, flags); err != nil {
		return fail("mmap submission ring", err)
	}
	if r.cqRing, err = unix.Mmap(r.fd, offCQRing, int(p.cqOff.cqes+p.cqEntries*cqeSize), prot, flags); err != nil {
		return fail("mmap completion ring", err)
	}
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries*sqeSize), prot, flags); err != nil {
		return fail("mmap submission entries", err)
	}
	r.sqHead = (*uint32)(unsafe.Pointer(&r.sqRing[p.sqOff.head]))
	r.sqTail = (*uint32)(unsafe.Pointer(&r.sqRing[p.sqOff.tail]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&r.sqRing[p.sqOff.ringMask]))
	r.sqArray = unsafe.Pointer(&r.sqRing[p.sqOff.array])
	r.cqHead = (*uint32)(unsafe.Pointer(&r.cqRing[p.cqOff.head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&r.cqRing[p.cqOff.tail]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&r.cqRing[p.cqOff.ringMask]))
	r.cqes = unsafe.Pointer(&r.cqRing[p.cqOff.cqes])
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fail("eventfd", err)
	}
	r.event = os.NewFile(uintptr(efd), "io_uring eventfd")
	e := int32(efd)
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerEvtFD, uintptr(unsafe.Pointer(&e)), 1, 0, 0); errno != 0 {
		return fail("register eventfd", errno)
	}
	return r, nil
}

// Fdatasync makes the data of every file in fds durable, as fdatasync(2)
// would, with at most parallel of them in flight, and puts each file's
// result in errs (nil, or the errno). It returns an error only when the
// ring itself failed; every file whose fsync did not complete is then
// marked with that error in errs, never nil.
//
// Submitting does not block (the kernel hands each fsync to its io-wq
// threads) and the completions are waited for on the eventfd through the
// runtime's poller, so no thread of the process blocks in a system call:
// in a process with one P, each fdatasync blocked in the kernel would
// otherwise hold the P until the runtime's sysmon retook it.
func (r *Ring) Fdatasync(fds []int, errs []error, parallel int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("io_uring: closed")
	}
	if parallel <= 0 || parallel > int(r.entries) {
		parallel = int(r.entries)
	}
	errs = errs[:len(fds)]
	for i := range errs {
		errs[i] = errPending
	}
	next, inFlight := 0, 0 // fds[:next] are in the ring; inFlight of them not completed
	tail := atomic.LoadUint32(r.sqTail)
	for next < len(fds) || inFlight > 0 {
		if n := min(parallel-inFlight, len(fds)-next); n > 0 {
			for i := range n {
				idx := (tail + uint32(i)) & r.sqMask
				s := (*sqe)(unsafe.Pointer(&r.sqeMem[idx*sqeSize]))
				*s = sqe{opcode: opFsync, fd: int32(fds[next+i]), fsyncFlags: fsyncDatasync, userData: uint64(next + i)}
				*(*uint32)(unsafe.Add(r.sqArray, idx*4)) = idx
			}
			tail += uint32(n)
			atomic.StoreUint32(r.sqTail, tail)
			next += n
			inFlight += n
		}
		if unsubmitted := tail - atomic.LoadUint32(r.sqHead); unsubmitted > 0 {
			if err := r.enter(unsubmitted); err != nil {
				// The kernel took none of the entries left: take them
				// back (nothing else consumes the ring) and give up.
				tail -= unsubmitted
				atomic.StoreUint32(r.sqTail, tail)
				inFlight -= int(unsubmitted)
				r.drain(inFlight, errs)
				return r.fail(errs, err)
			}
		}
		if got := r.reap(errs); got > 0 {
			inFlight -= got
			continue
		}
		if err := r.wait(); err != nil {
			r.drain(inFlight, errs)
			return r.fail(errs, err)
		}
	}
	return nil
}

// errPending marks a file whose fsync has not completed.
var errPending = errors.New("io_uring: fsync not completed")

// fail marks every file whose fsync did not complete with err.
func (r *Ring) fail(errs []error, err error) error {
	for i, e := range errs {
		if e == errPending {
			errs[i] = err
		}
	}
	return err
}

// enter submits n entries without waiting for their completion. It does
// not block: the kernel never does an fsync inline, it queues it for its
// io-wq threads, so RawSyscall (no scheduler bookkeeping) is right for it.
// Entries the kernel did not take stay in the ring for the next call.
func (r *Ring) enter(n uint32) error {
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(n), 0, 0, 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR, unix.EAGAIN:
			continue
		default:
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
	}
}

// reap takes every posted completion, records its result and returns how
// many there were.
func (r *Ring) reap(errs []error) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail; head++ {
		c := (*cqe)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*cqeSize))
		if i := int(c.userData); i < len(errs) {
			if c.res < 0 {
				errs[i] = unix.Errno(-c.res)
			} else {
				errs[i] = nil
			}
		}
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// wait blocks the goroutine (not its thread) until the eventfd says a
// completion was posted, or a second has passed: the ring is then looked
// at again anyway, so a notification that never came costs a second, not
// a hang.
func (r *Ring) wait() error {
	if err := r.event.SetReadDeadline(time.Now().Add(maxReapTimeout)); err != nil {
		return fmt.Errorf("io_uring eventfd: %w", err)
	}
	if _, err := r.event.Read(r.buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("io_uring eventfd: %w", err)
	}
	return nil
}

// drain waits for the entries still in flight after a failure of the
// ring, so that no file is closed under a pending fsync; an entry whose
// completion does not come within five seconds stays pending.
func (r *Ring) drain(inFlight int, errs []error) {
	deadline := time.Now().Add(5 * time.Second)
	for inFlight > 0 && time.Now().Before(deadline) {
		if got := r.reap(errs); got > 0 {
			inFlight -= got
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close releases the ring. No call may be in progress.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.release()
}

func (r *Ring) release() error {
	var errs []error
	if r.event != nil {
		errs = append(errs, r.event.Close())
	}
	for _, m := range [][]byte{r.sqeMem, r.cqRing, r.sqRing} {
		if m != nil {
			errs = append(errs, unix.Munmap(m))
		}
	}
	errs = append(errs, unix.Close(r.fd))
	return errors.Join(errs...)
}
