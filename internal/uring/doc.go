// Package uring makes files durable through the kernel's io_uring, so
// that a process waits for many fdatasync calls at once without a thread
// blocked in a system call.
//
// Why: a worker process records on one Go P. Each fdatasync of a sync
// round blocks the thread that makes it, and the runtime's sysmon must
// retake the P from it (every retake sets sysmon polling every 20 µs
// again) and wake another thread to run the rest of the process; a round
// of 25 files was 25 such hand-offs. Through a ring, a round is one
// non-blocking submission, the kernel's io-wq threads do the syncs, and
// the goroutine that waits for them parks on an eventfd in the runtime's
// poller like any socket read.
//
// Only what the storage package needs is here: IORING_OP_FSYNC with
// IORING_FSYNC_DATASYNC, one submitter at a time, completions read from
// the shared ring. New fails where io_uring is missing or forbidden
// (kernels before 5.6, kernel.io_uring_disabled, container seccomp
// filters); callers then make the system calls themselves.
package uring
