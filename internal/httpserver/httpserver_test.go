package httpserver

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewSetsEveryTimeout(t *testing.T) {
	s := New(http.NotFoundHandler(), nil)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("timeouts %v %v %v %v: each must be set, or idle clients hold descriptors for ever",
			s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}

// TestLongResponse: an answer streaming longer than the server's read and
// write timeouts is cut without LongResponse and complete with it.
func TestLongResponse(t *testing.T) {
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 8; i++ {
			io.WriteString(w, strings.Repeat("x", 1000)+"\n")
			http.NewResponseController(w).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/cut", stream)
	mux.Handle("/long", LongResponse(stream))
	srv := New(mux, nil)
	srv.ReadTimeout, srv.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	get := func(path string) (int, error) {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return len(b), err
	}
	if n, err := get("/long"); err != nil || n != 8*1001 {
		t.Errorf("long response: %d bytes, %v; want 8008 bytes", n, err)
	}
	if n, err := get("/cut"); err == nil && n == 8*1001 {
		t.Errorf("without LongResponse the answer outlived WriteTimeout: the test proves nothing")
	}
}

// TestHijackedOutlivesTimeouts: a connection taken over by its handler (the
// browser view's WebSocket) has the server's deadlines cleared by net/http,
// so it needs no LongResponse; this guards that assumption.
func TestHijackedOutlivesTimeouts(t *testing.T) {
	hijack := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
		time.Sleep(600 * time.Millisecond) // past both timeouts
		io.WriteString(c, "still here\n")
	})
	srv := New(hijack, nil)
	srv.ReadTimeout, srv.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "still here\n" {
		t.Errorf("hijacked connection got %q, want the write made after the timeouts", b)
	}
}
