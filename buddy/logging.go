package buddy

import (
	"context"
	"log/slog"
	"strings"
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
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
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
