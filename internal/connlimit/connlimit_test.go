package connlimit

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rig is a limited listener on loopback with a goroutine accepting into a
// channel.
type rig struct {
	l        *Listener
	accepted chan net.Conn
}

func newRig(t *testing.T, o Options) *rig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{l: Wrap(ln, o), accepted: make(chan net.Conn, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := r.l.Accept()
			if err != nil {
				return
			}
			r.accepted <- c
		}
	}()
	t.Cleanup(func() { r.l.Close(); wg.Wait() })
	return r
}

// dial connects from source IP src and reports whether the server kept the
// connection (true) or closed it at once (false); kept ones are returned.
func (r *rig) dial(t *testing.T, src string) (client, server net.Conn, kept bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", r.l.Addr().String())
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	closed := make(chan struct{})
	go func() {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) || isReset(err) {
			close(closed)
		}
	}()
	select {
	case s := <-r.accepted:
		t.Cleanup(func() { s.Close() })
		return c, s, true
	case <-closed:
		return c, nil, false
	case <-time.After(10 * time.Second):
		t.Fatalf("connection from %s neither accepted nor closed", src)
	}
	return nil, nil, false
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestListenerLimits(t *testing.T) {
	type step struct {
		src   string
		kept  bool
		close int // before dialing, close the server side of the kept connection with this index (1-based)
	}
	tests := []struct {
		name  string
		opts  Options
		steps []step
		want  map[Reason]int64
	}{
		{
			name: "listener full, then room after a close",
			opts: Options{MaxConns: 2},
			steps: []step{{src: "127.0.0.1", kept: true}, {src: "127.0.0.2", kept: true}, {src: "127.0.0.3", kept: false},
				{src: "127.0.0.3", kept: true, close: 1}},
			want: map[Reason]int64{ReasonListenerFull: 1},
		},
		{
			name: "per-address limit leaves other addresses in",
			opts: Options{MaxPerHost: 2},
			steps: []step{{src: "127.0.0.1", kept: true}, {src: "127.0.0.1", kept: true}, {src: "127.0.0.1", kept: false},
				{src: "127.0.0.2", kept: true}, {src: "127.0.0.1", kept: false}},
			want: map[Reason]int64{ReasonHostFull: 2},
		},
		{
			name: "descriptor reserve: 10 open, limit 13, reserve 1 admits two",
			opts: Options{Budget: NewBudget(BudgetOptions{Limit: 13, Reserve: 1, Count: func() (int, error) { return 11, nil }, Every: time.Hour})},
			steps: []step{{src: "127.0.0.1", kept: true}, {src: "127.0.0.2", kept: true}, {src: "127.0.0.3", kept: false},
				{src: "127.0.0.3", kept: true, close: 2}},
			want: map[Reason]int64{ReasonDescriptors: 1},
		},
		{
			name:  "no limits",
			opts:  Options{},
			steps: []step{{src: "127.0.0.1", kept: true}, {src: "127.0.0.1", kept: true}, {src: "127.0.0.1", kept: true}},
			want:  map[Reason]int64{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.opts)
			var kept []net.Conn
			for i, st := range tc.steps {
				if st.close > 0 {
					kept[st.close-1].Close()
					kept[st.close-1].Close() // a second close must not release twice
				}
				_, s, ok := r.dial(t, st.src)
				if ok != st.kept {
					t.Fatalf("step %d from %s: kept=%v, want %v (stats %+v)", i+1, st.src, ok, st.kept, r.l.Stats())
				}
				if ok {
					kept = append(kept, s)
				}
			}
			st := r.l.Stats()
			if len(st.Refused) != len(tc.want) {
				t.Errorf("refused %v, want %v", st.Refused, tc.want)
			}
			for reason, n := range tc.want {
				if st.Refused[reason] != n {
					t.Errorf("refused[%s] = %d, want %d", reason, st.Refused[reason], n)
				}
			}
			open := 0
			for i, s := range kept {
				closedBefore := false
				for _, stp := range tc.steps {
					if stp.close == i+1 {
						closedBefore = true
					}
				}
				if !closedBefore {
					open++
				}
				_ = s
			}
			if st.Open != open {
				t.Errorf("open = %d, want %d", st.Open, open)
			}
		})
	}
}

func TestBudgetCountsBetweenRecounts(t *testing.T) {
	now := time.Unix(1000, 0)
	counted := 0
	b := NewBudget(BudgetOptions{Limit: 100, Reserve: 20, Every: time.Second, Now: func() time.Time { return now },
		Count: func() (int, error) { counted++; return 50, nil }})
	// The fresh count (50) includes the connection being admitted.
	admitted := 0
	for b.take() {
		admitted++
		if admitted > 100 {
			t.Fatal("budget never refuses")
		}
	}
	if admitted != 31 { // 49 open besides the first, up to 80 = limit − reserve
		t.Errorf("admitted %d connections, want 31", admitted)
	}
	if counted != 1 {
		t.Errorf("counted /proc %d times within one interval, want 1", counted)
	}
	b.give()
	if !b.take() {
		t.Error("a released connection's room is not reused")
	}
	// After the interval the count is authoritative again: something else
	// freed 10 descriptors.
	now = now.Add(2 * time.Second)
	b.count = func() (int, error) { return 71, nil } // 70 open + the new one
	n := 0
	for b.take() {
		n++
	}
	if n != 10 {
		t.Errorf("after a recount admitted %d, want 10", n)
	}
}

func TestOpenFilesAndRaise(t *testing.T) {
	n, err := OpenFiles()
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	f, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m, _ := OpenFiles(); m != n+1 {
		t.Errorf("OpenFiles after one more listener = %d, want %d", m, n+1)
	}
	lim, err := RaiseFileLimit()
	if err != nil || lim < 64 {
		t.Errorf("RaiseFileLimit = %d, %v", lim, err)
	}
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	if uint64(lim) != rl.Cur || rl.Cur != rl.Max {
		t.Errorf("limit %d, rlimit now %+v: soft not raised to hard", lim, rl)
	}
}

func TestReserve(t *testing.T) {
	for _, tc := range []struct{ limit, cams, want int }{
		{256, 2, 80}, {1024, 10, 256}, {1024, 100, 512}, {1 << 20, 50, 1 << 18}, {100, 0, 50},
	} {
		if got := Reserve(tc.limit, tc.cams); got != tc.want {
			t.Errorf("Reserve(%d, %d) = %d, want %d", tc.limit, tc.cams, got, tc.want)
		}
	}
}

// emfileListener fails Accept with EMFILE a few times before delegating.
type emfileListener struct {
	net.Listener
	fails int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

func TestAcceptSurvivesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	l := Wrap(&emfileListener{Listener: ln, fails: 3}, Options{Name: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer l.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE: %v (a server would stop serving)", err)
	}
	c.Close()
	if l.Stats().Refused[ReasonDescriptors] != 3 {
		t.Errorf("stats %+v, want 3 descriptor refusals", l.Stats())
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d log lines for one burst, want 1:\n%s", n, logs.String())
	}
	// Close ends a pending Accept.
	done := make(chan error)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Accept after Close returned a connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

func TestRefusalsLoggedOncePerBurst(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(0, 0)
	l := Wrap(nil, Options{Name: "http", Logger: slog.New(slog.NewTextHandler(&logs, nil)), LogEvery: 10 * time.Second,
		Now: func() time.Time { return now }})
	for i := 0; i < 1000; i++ { // 1000 refusals over 5 s
		l.refuse(ReasonHostFull, "10.0.0.9")
		now = now.Add(5 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("%d lines for a 5 s burst, want 1:\n%s", n, logs.String())
	}
	now = now.Add(6 * time.Second) // burst goes on: one summary
	l.refuse(ReasonHostFull, "10.0.0.9")
	if !strings.Contains(logs.String(), "still refusing") || strings.Count(logs.String(), "\n") != 2 {
		t.Fatalf("want one summary line:\n%s", logs.String())
	}
}
