package recorder

import (
	"bytes"
	"context"
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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := newBatchedConn(nc, newStallSweeper(ctx))
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
	if bc.lowat.Load() < minBatch {
		t.Fatalf("after %v of a fast stream the mark is %d, want at least %d", rateWindow, bc.lowat.Load(), minBatch)
	}
	if k := rcvLowat(t, bc.raw); int64(k) != bc.lowat.Load() {
		t.Fatalf("SO_RCVLOWAT is %d, the conn set %d", k, bc.lowat.Load())
	}
}

// A stream that pauses after flowing fast (a still scene, a camera about
// to fail) does not leave its last bytes in the kernel below the mark:
// the sweeper drops the mark after stallAfter and they are read, the connection
// still open.
func TestBatchedConnReadsAStalledStream(t *testing.T) {
	little := []byte("a few bytes, far below the mark")
	release := make(chan struct{})
	defer close(release)
	var sent bytes.Buffer
	bc, _ := fastStream(t, &sent, func(c net.Conn) error {
		time.Sleep(100 * time.Millisecond) // the reader drained the queue and waits at its mark
		_, err := c.Write(little)
		<-release // open until the reader is done
		return err
	})
	c := net.Conn(bc)
	buf := make([]byte, 4096)
	var got bytes.Buffer
	for !bytes.HasSuffix(got.Bytes(), little) {
		// ten stall times: a reader stranded at its mark would wait for
		// the deadline instead
		c.SetReadDeadline(time.Now().Add(10 * stallAfter))
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("after %d bytes (mark %d): %v; the last bytes stayed in the kernel", got.Len(), bc.lowat.Load(), err)
		}
	}
	if k := rcvLowat(t, bc.raw); k != 1 {
		t.Errorf("SO_RCVLOWAT %d after the stall, want 1", k)
	}
}
