package recorder

import (
	"context"
	"net"
	"sync"
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
// read later than that. And a drained reader waits for the next tick of a
// grid shared by the process's cameras (see Read), so the process wakes
// once per tick for all of them.
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
	raw      syscall.RawConn
	lowat    atomic.Int64 // the mark set now (1: none); the sweeper lowers it
	lastRead atomic.Int64 // when a Read last returned (Unix ns), for the sweeper
	since    time.Time    // start of the rate window
	n        int64        // bytes read in the window
	sweeper  *stallSweeper
	// drained is set when the last Read came back short: the socket held
	// less than asked, so the next Read would wait for the kernel.
	drained bool
}

func newBatchedConn(c net.Conn, s *stallSweeper) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	bc := &batchedConn{Conn: c, raw: raw, since: time.Now(), sweeper: s}
	bc.lowat.Store(1)
	bc.lastRead.Store(bc.since.UnixNano())
	s.add(bc)
	return bc
}

func (c *batchedConn) Read(p []byte) (int, error) {
	if c.drained && c.lowat.Load() > 1 {
		// A flowing stream whose socket was drained waits for the next
		// tick of a batchInterval grid of the wall clock, the same grid
		// for every camera of the process, rather than for its own
		// socket: timers due at one instant fire in one wake-up of the
		// process, so its cameras are read together, once per tick,
		// instead of each on a wake-up of its own. Nothing waits longer
		// than batchInterval, and a socket still holding data after a
		// read (a full one) is read again at once.
		now := time.Now()
		time.Sleep(now.Truncate(batchInterval).Add(batchInterval).Sub(now))
	}
	n, err := c.Conn.Read(p)
	c.drained = n < len(p)
	c.n += int64(n)
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	if now.Sub(c.since) >= rateWindow {
		if want := lowatFor(c.n, now.Sub(c.since)); int64(want) != c.lowat.Load() && setRcvLowat(c.raw, want) == nil {
			c.lowat.Store(int64(want))
		}
		c.since, c.n = now, 0
	}
	return n, err
}

// unstall drops the mark of a reader left waiting.
func (c *batchedConn) unstall() {
	if c.lowat.Load() > 1 && setRcvLowat(c.raw, 1) == nil {
		c.lowat.Store(1)
	}
}

func (c *batchedConn) Close() error {
	c.sweeper.remove(c)
	return c.Conn.Close()
}

// stallSweeper drops the mark of every reader of a recorder left waiting
// at it for stallAfter (see stallAfter): one goroutine per Manager, woken
// every stallAfter, rather than a timer per camera re-armed on every read,
// which cost the workers more CPU than the batching saved (bench record:
// 0.180 vs 0.154 CPU-s per camera-minute at 250 cameras).
type stallSweeper struct {
	mu    sync.Mutex
	conns map[*batchedConn]struct{}
}

// newStallSweeper sweeps until ctx ends.
func newStallSweeper(ctx context.Context) *stallSweeper {
	s := &stallSweeper{conns: map[*batchedConn]struct{}{}}
	go s.run(ctx)
	return s
}

func (s *stallSweeper) add(c *batchedConn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *stallSweeper) remove(c *batchedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *stallSweeper) run(ctx context.Context) {
	t := time.NewTicker(stallAfter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			for c := range s.conns {
				if c.lowat.Load() > 1 && now.UnixNano()-c.lastRead.Load() >= int64(stallAfter) {
					c.unstall() // a setsockopt: cheap, never blocks
				}
			}
			s.mu.Unlock()
		}
	}
}

// dial dials a camera's RTSP connection as a batchedConn swept by s.
func (s *stallSweeper) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return newBatchedConn(c, s), nil
}
