package recorder

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func rcvLowat(t *testing.T, raw syscall.RawConn) int {
	t.Helper()
	var n int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		n, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	}); err != nil || gerr != nil {
		t.Fatalf("getsockopt SO_RCVLOWAT: %v %v", err, gerr)
	}
	return n
}

// fastStream serves, on a loopback connection, a stream fast enough that
// even a loaded machine stays above minBatch for one and a half rate
// windows, written also to sent, then calls then on the server's side of
// the connection (which closes when then returns). It returns the
// client's side as a batchedConn, and the server's outcome.
func fastStream(t *testing.T, sent *bytes.Buffer, then func(c net.Conn) error) (*batchedConn, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		for end := time.Now().Add(rateWindow + rateWindow/2); time.Now().Before(end); {
			if _, err := c.Write(chunk); err != nil {
				served <- err
				return
			}
			sent.Write(chunk)
			time.Sleep(10 * time.Millisecond)
		}
		served <- then(c)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newBatchedConn(nc, &readGrid{})
	t.Cleanup(func() { c.Close() })
	bc, ok := c.(*batchedConn)
	if !ok {
		t.Fatalf("a TCP connection is not batched: %T", c)
	}
	return bc, served
}

// A stream read through batchedConn gets its low-water mark after the
// first rate window, and every byte still arrives, the tail below the mark
// included when the sender closes.
func TestBatchedConnOverLoopback(t *testing.T) {
	tail := []byte("the last bytes")
	var sent bytes.Buffer
	bc, served := fastStream(t, &sent, func(c net.Conn) error {
		time.Sleep(50 * time.Millisecond) // the reader is waiting at its mark
		_, err := c.Write(tail)
		sent.Write(tail)
		return err
	})
	c := net.Conn(bc)
	if got := rcvLowat(t, bc.raw); got != 1 {
		t.Fatalf("SO_RCVLOWAT before the first window: %d, want 1", got)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 4096) // the RTSP client's read size
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got.Len(), err)
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatalf("read %d bytes, sent %d (same: %v)", got.Len(), sent.Len(), bytes.Equal(got.Bytes(), sent.Bytes()))
	}
	if int64(bc.lowat) < minBatch {
		t.Fatalf("after %v of a fast stream the mark is %d, want at least %d", rateWindow, int64(bc.lowat), minBatch)
	}
	if k := rcvLowat(t, bc.raw); int64(k) != int64(bc.lowat) {
		t.Fatalf("SO_RCVLOWAT is %d, the conn set %d", k, int64(bc.lowat))
	}
}

// A stream that pauses after flowing fast (a still scene, a camera about
// to fail) does not leave its last bytes in the kernel below the mark:
// the reader polls its socket at every tick of the grid, so they are read
// while the mark, far above them, is still set.
func TestBatchedConnReadsAStalledStream(t *testing.T) {
	little := []byte("a few bytes, far below the mark")
	release := make(chan struct{})
	defer close(release)
	var sent bytes.Buffer
	bc, _ := fastStream(t, &sent, func(c net.Conn) error {
		time.Sleep(100 * time.Millisecond) // the reader drained the queue
		_, err := c.Write(little)
		<-release // open until the reader is done
		return err
	})
	c := net.Conn(bc)
	buf := make([]byte, 4096)
	var got bytes.Buffer
	for !bytes.HasSuffix(got.Bytes(), little) {
		// a reader left waiting for its mark would reach the deadline
		// instead
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("after %d bytes (mark %d): %v; the last bytes stayed in the kernel", got.Len(), bc.lowat, err)
		}
	}
	if k := rcvLowat(t, bc.raw); k <= len(little) {
		t.Errorf("SO_RCVLOWAT %d when the last bytes were read: the stream was not read by polling", k)
	}
}

// silentStream is a fastStream that then goes silent, open until the test
// ends.
func silentStream(t *testing.T) *batchedConn {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var sent bytes.Buffer
	bc, _ := fastStream(t, &sent, func(net.Conn) error {
		<-release
		return nil
	})
	// drain the fast phase: its last chunk comes within rateWindow and a
	// half; the mark is set after the first window
	buf := make([]byte, 4096)
	bc.SetReadDeadline(time.Now().Add(rateWindow*3/2 + 500*time.Millisecond))
	for {
		if _, err := bc.Read(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("draining the stream: %v", err)
			}
			break
		}
	}
	if bc.lowat <= 1 {
		t.Fatalf("the mark is %d after a fast stream", bc.lowat)
	}
	return bc
}

// A polling reader honours its read deadline: the RTSP client's read
// timeout ends a session whose camera went silent.
func TestBatchedConnDeadline(t *testing.T) {
	bc := silentStream(t)
	bc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := bc.Read(make([]byte, 4096))
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read of a silent stream past its deadline: %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read of a silent stream did not return at its deadline")
	}
}

// Close ends a polling reader's Read, as it ends a waiting one's.
func TestBatchedConnClose(t *testing.T) {
	bc := silentStream(t)
	bc.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := bc.Read(make([]byte, 4096))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	bc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read did not return after Close")
	}
}

// A polled read allocates nothing: at ~80 reads a second per camera, an
// allocation each (a closure for the raw read) was a good part of a
// worker's garbage.
func TestReadNowAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(bytes.Repeat([]byte{1}, 1<<20)) //nolint:errcheck // the reader checks what came
		time.Sleep(5 * time.Second)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newBatchedConn(nc, &readGrid{}).(*batchedConn)
	defer c.Close()
	buf := make([]byte, 4096)
	// the first read binds the raw read; wait for the data to be there
	for got := 0; got < 8192; {
		n, _, err := c.readNow(buf)
		n = min(n, len(buf))
		c.releaseSpill()
		if err == errWouldBlock {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if a := testing.AllocsPerRun(100, func() {
		if _, _, err := c.readNow(buf); err != nil && err != errWouldBlock {
			t.Fatal(err)
		}
		c.releaseSpill() // as the Reads that consume it do
	}); a != 0 {
		t.Errorf("readNow allocates %.1f times a read, want 0", a)
	}
}

// One poll takes in all that a tick brought: the RTSP client's 4 KiB
// Reads that follow are served from the poll's spill buffer, in order,
// without a system call (a read deadline in the past fails any read of
// the socket), and once it is empty the buffer goes back to the grid and
// the next Read goes to the socket again.
func TestPollReadsATickAtOnce(t *testing.T) {
	sent := make([]byte, 16<<10) // a tick of a 3 Mbit/s stream
	for i := range sent {
		sent[i] = byte(i % 251)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	defer close(release)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(sent) //nolint:errcheck // the reader checks what came
		<-release
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	g := &readGrid{}
	c := newBatchedConn(nc, g).(*batchedConn)
	defer c.Close()
	c.lowat = minBatch // polled, as a flowing stream is
	for deadline := time.Now().Add(10 * time.Second); queued(t, c.raw) < len(sent); {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d bytes reached the socket", queued(t, c.raw), len(sent))
		}
		time.Sleep(5 * time.Millisecond)
	}

	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || n != len(buf) {
		t.Fatalf("first read: %d bytes, %v", n, err)
	}
	got := append([]byte(nil), buf[:n]...)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	for len(got) < len(sent) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read after %d of %d bytes went to the socket: %v", len(got), len(sent), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("the bytes read differ from those sent")
	}
	if c.spill != nil || len(g.spills) != 1 {
		t.Fatalf("after the spill was consumed: held %v, the grid keeps %d, want the one buffer back", c.spill != nil, len(g.spills))
	}
	_, err = c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read once the spill is empty: %v, want the deadline's timeout", err)
	}
}

// queued is how many bytes wait in the socket's receive queue.
func queued(t *testing.T, raw syscall.RawConn) int {
	t.Helper()
	var n int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		n, gerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil || gerr != nil {
		t.Fatalf("ioctl SIOCINQ: %v %v", err, gerr)
	}
	return n
}
