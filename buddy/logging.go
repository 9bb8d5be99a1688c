package buddy

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// mlLogWriter turns memberlist's "[LEVEL] memberlist: text" lines into
// slog records, and reports the two events memberlist has no hook for:
// a suspicion raised by this node's own probe, and a message a peer sent
// with a different gossip key.
type mlLogWriter struct {
	log       *slog.Logger
	onSuspect func(node string)
	onKeyErr  func(line string)
	// onRefuted is told that peers had declared this server dead while it
	// was running (lost packets, a stall): memberlist refutes it and logs,
	// but has no callback.
	onRefuted func()
	// limit keeps a flood of bad packets (garbage sent to the gossip
	// port, a peer with another key) from flooding the log: each kind of
	// warning or error is logged once per logEvery, with the number of
	// lines suppressed since.
	limit *limiter
}

func (w *mlLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := slog.LevelInfo
	for _, l := range []struct {
		tag string
		lvl slog.Level
	}{{"[DEBUG] ", slog.LevelDebug}, {"[INFO] ", slog.LevelInfo}, {"[WARN] ", slog.LevelWarn}, {"[ERR] ", slog.LevelError}} {
		if rest, ok := strings.CutPrefix(line, l.tag); ok {
			level, line = l.lvl, rest
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if strings.Contains(line, "use of closed network connection") {
		level = slog.LevelDebug // sends racing our own Shutdown
	}
	if rest, ok := strings.CutPrefix(line, "Suspect "); ok && w.onSuspect != nil {
		if node, ok := strings.CutSuffix(rest, " has failed, no acks received"); ok {
			w.onSuspect(node)
		}
	}
	if strings.HasPrefix(line, "Refuting a dead message") && w.onRefuted != nil {
		w.onRefuted()
	}
	if isKeyError(line) && w.onKeyErr != nil {
		w.onKeyErr(line)
	}
	if level >= slog.LevelWarn && w.limit != nil {
		ok, suppressed := w.limit.allowCount(lineKind(line), time.Now())
		if !ok {
			return len(p), nil
		}
		if suppressed > 0 {
			w.log.Log(context.Background(), level, line, "component", "memberlist", "suppressed_similar", suppressed)
			return len(p), nil
		}
	}
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

// lineKind is a log line without its numbers (addresses, ports, sizes),
// so that the same complaint from many senders counts as one kind.
func lineKind(line string) string {
	b := make([]byte, 0, min(len(line), 96))
	for i := 0; i < len(line) && len(b) < 96; i++ {
		if ch := line[i]; ch < '0' || ch > '9' {
			b = append(b, ch)
		}
	}
	return string(b)
}

// logEvery is how often one kind of complaint about peer input is logged.
const logEvery = 10 * time.Second

// limiter lets each key through once per period and counts the rest.
type limiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	count map[string]int
}

func newLimiter(every time.Duration) *limiter {
	return &limiter{every: every, last: map[string]time.Time{}, count: map[string]int{}}
}

func (l *limiter) allow(key string, now time.Time) bool {
	ok, _ := l.allowCount(key, now)
	return ok
}

// allowCount reports whether key may pass now, and how many times it was
// held back since it last passed.
func (l *limiter) allowCount(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[key]; ok && now.Sub(last) < l.every {
		l.count[key]++
		return false, 0
	}
	if len(l.last) > 4096 {
		// Bounded memory under garbage with ever-new keys.
		clear(l.last)
		clear(l.count)
	}
	n := l.count[key]
	l.last[key] = now
	delete(l.count, key)
	return true, n
}

// isKeyError recognises memberlist's errors for a peer using another key,
// or none. Case is ignored: v0.5.3 and v0.5.4 capitalise differently.
func isKeyError(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "no installed keys could decrypt") ||
		strings.Contains(s, "encryption is not configured") ||
		strings.Contains(s, "remote state is not encrypted") ||
		strings.Contains(s, "payload is too small to decrypt") ||
		strings.Contains(s, "cannot decrypt empty payload")
}

// peerAddr extracts the peer address memberlist appends to its errors
// ("from=10.0.0.9:7946"), or "".
func peerAddr(line string) string {
	_, rest, ok := strings.Cut(line, "from=")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, " \t,;)"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
