package recorder

import (
	"context"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Read batching. A camera's RTSP stream over TCP arrives as ~200 packets
// a second (2 Mbit/s); woken for each, a recorder process spends a third
// of its CPU on the wake-ups themselves (the scheduler's context switches,
// the Go runtime's netpoller and its sysmon thread), and splitting
// cameras over worker processes multiplies that cost, since wake-ups in
// one process never share another's (see README, Benchmarks). So once a
// stream flows, the socket's receive low-water mark (SO_RCVLOWAT) is set
// to batchInterval's worth of its bytes: the kernel then wakes the reader
// about once per video frame instead of once per packet, and nothing is
// read later than that.
const (
	// batchInterval is how much of a stream the kernel gathers before it
	// wakes the reader: one frame at 25 fps, far below what a viewer or
	// the recorder notices.
	batchInterval = 40 * time.Millisecond
	// rateWindow is how often the stream's byte rate is measured and the
	// low-water mark adjusted; the first window, which holds the RTSP
	// handshake, is read packet by packet.
	rateWindow = time.Second
	// minBatch is the smallest low-water mark worth setting: a stream
	// that brings less in batchInterval (a few packets) is read as it
	// comes.
	minBatch = 4 << 10
	// maxBatch bounds the low-water mark (a 16 Mbit/s stream reaches it).
	maxBatch = 64 << 10
	// stallAfter is how long a reader may wait at its mark before the mark
	// is dropped to 1 and what is queued is read at once: a stream that
	// slowed or paused (a smart codec's still scene, a camera about to
	// fail) would otherwise leave its last bytes in the kernel until the
	// mark filled, seconds later, or until the read timeout took the
	// session down. The next rate window sets the mark for the new rate.
	stallAfter = 5 * batchInterval
)

// lowatFor is the receive low-water mark for a stream that brought n bytes
// over d: batchInterval's worth of them, 1 (wake on every byte) below
// minBatch, at most maxBatch.
func lowatFor(n int64, d time.Duration) int {
	if d <= 0 || n <= 0 {
		return 1
	}
	b := n * int64(batchInterval) / int64(d)
	if b < minBatch {
		return 1
	}
	return int(min(b, maxBatch))
}

// batchedConn is a camera's TCP connection whose receive low-water mark
// follows the stream's rate (see batchInterval). Its Read is called by one
// goroutine at a time (the RTSP client's), as net.Conn allows.
type batchedConn struct {
	net.Conn
	raw   syscall.RawConn
	lowat atomic.Int64 // the mark set now (1: none); stall lowers it
	since time.Time    // start of the rate window
	n     int64        // bytes read in the window
	// stall fires when no Read returned for stallAfter while a mark is
	// set (see stallAfter); Read pushes it back while the stream flows.
	stall *time.Timer
}

func newBatchedConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	bc := &batchedConn{Conn: c, raw: raw, since: time.Now()}
	bc.lowat.Store(1)
	bc.stall = time.AfterFunc(time.Hour, bc.unstall)
	bc.stall.Stop()
	return bc
}

func (c *batchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.since) >= rateWindow {
		if want := lowatFor(c.n, now.Sub(c.since)); int64(want) != c.lowat.Load() && setRcvLowat(c.raw, want) == nil {
			c.lowat.Store(int64(want))
		}
		c.since, c.n = now, 0
	}
	if c.lowat.Load() > 1 {
		c.stall.Reset(stallAfter)
	}
	return n, err
}

// unstall drops the mark of a reader left waiting (stall's func).
func (c *batchedConn) unstall() {
	if c.lowat.Load() > 1 && setRcvLowat(c.raw, 1) == nil {
		c.lowat.Store(1)
	}
}

func (c *batchedConn) Close() error {
	c.stall.Stop()
	return c.Conn.Close()
}

// dialBatched dials a camera's RTSP connection as batchedConn.
func dialBatched(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return newBatchedConn(c), nil
}
