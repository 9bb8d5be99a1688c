package recorder

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/internal/wallgrid"
)

// Read batching. A camera's RTSP stream over TCP arrives as ~200 packets
// a second (2 Mbit/s); woken for each, a recorder process spends a third
// of its CPU on the wake-ups themselves (the scheduler's context switches,
// the Go runtime's netpoller and its sysmon thread), and splitting
// cameras over worker processes multiplies that cost, since wake-ups in
// one process never share another's (see README, Benchmarks). So once a
// stream flows, its reader polls: it reads what the socket holds at every
// tick of a batchInterval grid shared by the process's cameras (a
// readGrid) and never waits on the runtime's netpoller, so the process
// wakes once per tick for all of them. The socket's receive low-water
// mark (SO_RCVLOWAT) keeps the packets from waking it in between: the
// netpoller watches every socket, edge-triggered, whether or not its
// reader waits, and the kernel reports a socket only once the mark is
// reached, so the mark is set to markSpan of the stream, far more than a
// reader draining at every tick leaves queued. Without the mark (one
// tick's worth of it, then two) a worker of 25 cameras was still woken
// 15–30 times between two ticks.
const (
	// batchInterval is the grid's tick: one frame at 25 fps, far below
	// what a viewer or the recorder notices, and the most a byte waits in
	// the kernel once its stream flows.
	batchInterval = 40 * time.Millisecond
	// markSpan is how much of the stream the low-water mark holds: enough
	// that a keyframe's burst between two ticks rarely reaches it.
	markSpan = 250 * time.Millisecond
	// rateWindow is how often the stream's byte rate is measured and the
	// low-water mark adjusted; the first window, which holds the RTSP
	// handshake, is read packet by packet.
	rateWindow = time.Second
	// minBatch is the smallest low-water mark worth setting: a stream
	// that brings less in markSpan (a few packets a tick) is read as it
	// comes, woken by the netpoller.
	minBatch = 24 << 10
	// maxBatch bounds the low-water mark (an 8 Mbit/s stream reaches it);
	// Linux grows the socket's receive buffer to hold it.
	maxBatch = 256 << 10
	// spillSize is the room a poll offers beyond the caller's buffer, so
	// that one read(2) takes in what a tick brought: with the RTSP
	// client's 4 KiB, a tick of a 2 Mbit/s stream (10 KB) and most of a
	// 4 Mbit/s one; an 8 Mbit/s stream's 40 KB take two. Before, a tick
	// of a 2 Mbit/s stream took three reads of 4 KiB, and reads were a
	// fifth of a recorder's CPU profile. Not larger: more than a few
	// buffers are held at once when the collector preempts readers at a
	// tick, and 64 KiB ones cost a hot standby of 20 cameras 0.04 MiB
	// each (`bench failover -standby hot`), where 16 KiB is a small
	// object of the allocator.
	spillSize = 16 << 10
	// maxFreeSpills bounds the spill buffers a grid keeps between polls:
	// a reader holds one only from its poll until it has consumed it,
	// within one tick, so a process needs about one per P (a worker runs
	// one). What it keeps is charged to every session of the process,
	// the hot standbys' included (issue 14's memory per camera).
	maxFreeSpills = 2
)

// lowatFor is the receive low-water mark for a stream that brought n bytes
// over d: markSpan's worth of them, 1 (wake on every byte) below
// minBatch, at most maxBatch.
func lowatFor(n int64, d time.Duration) int {
	if d <= 0 || n <= 0 {
		return 1
	}
	b := n * int64(markSpan) / int64(d)
	if b < minBatch {
		return 1
	}
	return int(min(b, maxBatch))
}

// batchedConn is a camera's TCP connection read by polling once its
// stream flows (see batchInterval). Its Read is called by one goroutine at
// a time (the RTSP client's), as net.Conn allows.
type batchedConn struct {
	net.Conn
	raw   syscall.RawConn
	grid  *readGrid
	lowat int       // the mark set now (1: none, the stream is read as it comes)
	since time.Time // start of the rate window
	n     int64     // bytes read in the window
	// drained is set when the last read came back short: the socket held
	// less than asked, so there is nothing more before the next tick.
	drained bool
	// spill is the grid's buffer a poll read into beyond the caller's
	// buffer, held while spilled, the part of it not yet returned by
	// Read, is not empty (nil otherwise).
	spill   *[spillSize]byte
	spilled []byte
	// poll is readNow's state, kept here so that a read allocates nothing.
	poll pollState
}

func newBatchedConn(c net.Conn, g *readGrid) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &batchedConn{Conn: c, raw: raw, grid: g, lowat: 1, since: time.Now()}
}

// Read reads as net.Conn does. A flowing stream's reader, once it has
// drained its socket, waits for the grid's next tick and reads what came
// meanwhile; the read deadline and Close are honoured at the tick (at most
// batchInterval late), since the read itself never waits.
//
// A poll reads into p and a spill buffer of the grid at once (see
// spillSize); the Reads that follow are served from the spill buffer
// until it is empty, without a system call.
func (c *batchedConn) Read(p []byte) (int, error) {
	for {
		if len(c.spilled) > 0 {
			n := copy(p, c.spilled)
			c.spilled = c.spilled[n:]
			if len(c.spilled) == 0 {
				c.releaseSpill()
			}
			return n, nil
		}
		if c.lowat <= 1 {
			n, err := c.Conn.Read(p)
			c.drained = n < len(p)
			c.account(n)
			return n, err
		}
		if c.drained {
			c.grid.wait()
		}
		total, full, err := c.readNow(p)
		if errors.Is(err, errors.ErrUnsupported) {
			c.lowat = 1 // no raw reads here: read as it comes
			continue
		}
		if err == errWouldBlock {
			c.drained = true
			c.account(0)
			continue
		}
		c.drained = !full
		c.account(total)
		return min(total, len(p)), err
	}
}

// holdSpill makes sure c holds a spill buffer, and returns it.
func (c *batchedConn) holdSpill() *[spillSize]byte {
	if c.spill == nil {
		c.spill = c.grid.getSpill()
	}
	return c.spill
}

// releaseSpill gives c's spill buffer back to the grid once nothing in it
// is left to return.
func (c *batchedConn) releaseSpill() {
	if c.spill != nil {
		c.grid.putSpill(c.spill)
		c.spill, c.spilled = nil, nil
	}
}

// account adds n bytes to the rate window and, at its end, sets the mark
// for the stream's rate: a stream that slowed below minBatch (a still
// scene of a smart codec, a camera about to fail) goes back to being read
// as it comes.
func (c *batchedConn) account(n int) {
	c.n += int64(n)
	now := time.Now()
	if d := now.Sub(c.since); d >= rateWindow {
		if want := lowatFor(c.n, d); remark(c.lowat, want) && setRcvLowat(c.raw, want) == nil {
			c.lowat = want
		}
		c.since, c.n = now, 0
	}
}

// remark tells whether a mark of have should become want: when the stream
// starts or stops being polled, or its rate changed by more than half. The
// mark only keeps packets from waking the process between two ticks, for
// which markSpan leaves room, and a setsockopt per camera a second (a
// stream's rate always changes a little) wakes the runtime's sysmon like
// any system call.
func remark(have, want int) bool {
	if (have <= 1) != (want <= 1) {
		return true
	}
	return want > have*3/2 || want < have/2
}

// readGrid is the batchInterval grid of one recorder process: flowing
// readers wait on it for the next tick. One timer per tick readies them
// all at once, in one wake-up of the process (timers of their own, due
// at the same instant, fired in a dozen wake-ups: the runtime's netpoller
// sleeps in whole milliseconds). It arms a timer only while a reader
// waits, so an idle process is not woken.
type readGrid struct {
	mu   sync.Mutex
	tick chan struct{} // closed at the next tick; nil while nobody waits

	// spills are the free spill buffers, at most maxFreeSpills: a free
	// list rather than a sync.Pool, so that what a process keeps is
	// bounded and known, and a poll allocates nothing once it is warm
	// (TestReadNowAllocatesNothing holds it to that, under the race
	// detector too, which makes a sync.Pool drop a quarter of its Puts).
	spillMu sync.Mutex
	spills  []*[spillSize]byte
}

// getSpill hands out a spill buffer, a kept one if there is one.
func (g *readGrid) getSpill() *[spillSize]byte {
	g.spillMu.Lock()
	defer g.spillMu.Unlock()
	if n := len(g.spills); n > 0 {
		b := g.spills[n-1]
		g.spills[n-1] = nil
		g.spills = g.spills[:n-1]
		return b
	}
	return new([spillSize]byte)
}

// putSpill takes back a spill buffer; beyond maxFreeSpills it is left to
// the collector.
func (g *readGrid) putSpill(b *[spillSize]byte) {
	g.spillMu.Lock()
	defer g.spillMu.Unlock()
	if len(g.spills) < maxFreeSpills {
		g.spills = append(g.spills, b)
	}
}

// wait returns at the next tick of the batchInterval grid of the wall
// clock.
func (g *readGrid) wait() {
	g.mu.Lock()
	tick := g.tick
	if tick == nil {
		tick = make(chan struct{})
		g.tick = tick
		time.AfterFunc(wallgrid.Until(batchInterval), func() {
			g.mu.Lock()
			g.tick = nil
			g.mu.Unlock()
			close(tick)
		})
	}
	g.mu.Unlock()
	<-tick
}

// dial dials a camera's RTSP connection as a batchedConn on g.
func (g *readGrid) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return newBatchedConn(c, g), nil
}

// errWouldBlock is readNow's answer for a socket that holds nothing.
var errWouldBlock = errors.New("recorder: socket empty")
