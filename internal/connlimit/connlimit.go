// Package connlimit bounds what a listener accepts, so that a flood of idle
// clients cannot take the file descriptors recording needs: a camera that
// drops must always be able to open a new socket, and a segment a new file.
//
// A [Listener] refuses (accepts and closes at once) a connection when
//   - the listener already holds MaxConns connections,
//   - the client's IP address already holds MaxPerHost of them, or
//   - the process's open descriptors, counted by a shared [Budget], would
//     exceed its limit minus the reserve kept for everything that is not
//     an accepted connection (camera sessions, segment files, bolt files,
//     gossip).
//
// Invariant: a connection counted by a Listener is released exactly once,
// when it is closed, whoever closes it (the server, the peer via the server,
// or a shutdown).
//
// Accept also survives running out of descriptors (EMFILE, ENFILE, ENOBUFS):
// it waits and retries instead of returning the error, because some servers
// (gortsplib's) stop serving for good on any Accept error.
package connlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Reason says why a connection was refused.
type Reason string

// Reasons a Listener refuses a connection.
const (
	ReasonListenerFull Reason = "listener full"
	ReasonHostFull     Reason = "per-address limit"
	ReasonDescriptors  Reason = "descriptor reserve"
)

// Options configure a Listener.
type Options struct {
	// Name is what the listener serves ("http", "rtsp"), for logs.
	Name string
	// MaxConns bounds the connections open at once; 0 is unlimited.
	MaxConns int
	// MaxPerHost bounds the connections open at once from one IP address;
	// 0 is unlimited.
	MaxPerHost int
	// Budget, shared by every listener of the process, keeps accepted
	// connections out of the descriptor reserve; nil means no budget.
	Budget *Budget
	// Logger receives one line when refusals start and a summary at most
	// every LogEvery while they go on; nil discards.
	Logger *slog.Logger
	// LogEvery is the least time between two refusal summaries (default 10s).
	LogEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats are a Listener's counters.
type Stats struct {
	Open    int              // connections open now
	Refused map[Reason]int64 // connections refused since start, by reason
}

// Listener is a net.Listener that enforces Options. Its connections keep
// their count until closed.
type Listener struct {
	net.Listener
	o    Options
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	open    int
	perHost map[string]int
	refused map[Reason]int64
	pending map[Reason]int64 // refusals not yet logged
	logged  time.Time        // when refusals were last logged
}

// Wrap limits ln according to o.
func Wrap(ln net.Listener, o Options) *Listener {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Listener{Listener: ln, o: o, done: make(chan struct{}),
		perHost: map[string]int{}, refused: map[Reason]int64{}, pending: map[Reason]int64{}}
}

// Accept returns the next connection within the limits; refused ones are
// closed without a byte written, and Accept goes on waiting.
func (l *Listener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !outOfResources(err) {
				return nil, err
			}
			// Out of descriptors: wait for some to be freed instead of
			// failing the server.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.refuse(ReasonDescriptors, "")
			select {
			case <-l.done:
				return nil, err
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		host := hostOf(c.RemoteAddr())
		if r := l.admit(host); r != "" {
			// Count before closing: whoever sees the close may read Stats.
			l.refuse(r, host)
			c.Close()
			continue
		}
		return &conn{Conn: c, l: l, host: host}, nil
	}
}

// Close stops accepting; connections already returned stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Open: l.open, Refused: map[Reason]int64{}}
	for r, n := range l.refused {
		s.Refused[r] = n
	}
	return s
}

// admit counts a new connection from host, or says why it is refused.
func (l *Listener) admit(host string) Reason {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.o.MaxConns > 0 && l.open >= l.o.MaxConns:
		return ReasonListenerFull
	case l.o.MaxPerHost > 0 && l.perHost[host] >= l.o.MaxPerHost:
		return ReasonHostFull
	case l.o.Budget != nil && !l.o.Budget.take():
		return ReasonDescriptors
	}
	l.open++
	l.perHost[host]++
	return ""
}

func (l *Listener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perHost[host]--; l.perHost[host] <= 0 {
		delete(l.perHost, host)
	}
	if l.o.Budget != nil {
		l.o.Budget.give()
	}
}

// refuse counts a refusal and logs the first of a burst at once, then a
// summary at most every LogEvery: a flood makes a few lines, not one per
// connection.
func (l *Listener) refuse(r Reason, host string) {
	l.mu.Lock()
	l.refused[r]++
	l.pending[r]++
	now := l.o.Now()
	if !l.logged.IsZero() && now.Sub(l.logged) < l.o.LogEvery {
		l.mu.Unlock()
		return
	}
	first := l.logged.IsZero() || now.Sub(l.logged) >= 2*l.o.LogEvery
	counts := fmt.Sprint(l.pending)
	clear(l.pending)
	l.logged = now
	open := l.open
	l.mu.Unlock()
	if first {
		l.o.Logger.Warn("refusing connections", "listener", l.o.Name, "reason", string(r), "remote", host, "open", open,
			"max_conns", l.o.MaxConns, "max_per_host", l.o.MaxPerHost)
		return
	}
	l.o.Logger.Warn("still refusing connections", "listener", l.o.Name, "refused", counts, "open", open, "since", l.o.LogEvery)
}

// conn releases its listener's count once, on the first Close.
type conn struct {
	net.Conn
	l    *Listener
	host string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

// NetConn returns the accepted connection beneath the wrapper, for code that
// needs the concrete type (socket options).
func (c *conn) NetConn() net.Conn { return c.Conn }

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// outOfResources reports errors after which Accept may succeed later.
func outOfResources(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
