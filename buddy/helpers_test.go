package buddy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// logSink collects log lines so tests can assert on them, and forwards
// warnings to t.Log while the test runs.
type logSink struct {
	mu    sync.Mutex
	t     testing.TB
	done  bool
	lines []string
}

func newLogSink(t testing.TB) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := strings.TrimSpace(string(p))
	s.lines = append(s.lines, line)
	if _, bench := s.t.(*testing.B); !bench && !s.done && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
		s.t.Log(line)
	}
	return len(p), nil
}

func (s *logSink) contains(sub ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		all := true
		for _, x := range sub {
			all = all && strings.Contains(l, x)
		}
		if all {
			return true
		}
	}
	return false
}

func (s *logSink) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

func (s *logSink) logger(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// testOpts returns options for a node on 127.0.0.1 with a free port.
func testOpts(t testing.TB, sink *logSink, name string, join ...string) Options {
	return Options{
		Name:     name,
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Key:      testKey,
		StateDir: t.TempDir(),
		Logger:   sink.logger(name),
	}
}

func startNode(t testing.TB, o Options) *Cluster {
	t.Helper()
	// ctx bounds the cluster's lifetime; Close ends it here.
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start %s: %v", o.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// crash stops c the way kill -9 would look to its peers: no leave notice,
// no memberlist Leave, unsaved state lost.
func crash(c *Cluster) { c.Shutdown() }

// waitFor is testutil.Eventually under the name this package's tests use.
var waitFor = testutil.Eventually

func memberState(c *Cluster, name string) State {
	for _, m := range c.View().Members {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

func findMember(c *Cluster, name string) (Member, bool) {
	for _, m := range c.View().Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

func allState(cs []*Cluster, name string, state State) func() bool {
	return func() bool {
		for _, c := range cs {
			if memberState(c, name) != state {
				return false
			}
		}
		return true
	}
}

func hasRecord(c *Cluster, server string, body []byte) bool {
	r, ok := c.View().Records[server]
	return ok && bytes.Equal(r.Body, body)
}

func describe(c *Cluster) string {
	v := c.View()
	var b strings.Builder
	for _, m := range v.Members {
		fmt.Fprintf(&b, "%s=%s ", m.Name, m.State)
	}
	return b.String()
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signEntry signs e with k, as the server holding k would.
func signEntry(k ed25519.PrivateKey, e entry) entry {
	e.Key = k.Public().(ed25519.PublicKey)
	e.Sig = ed25519.Sign(k, signedEntry(e))
	return e
}

func signSecret(k ed25519.PrivateKey, s secretEntry) secretEntry {
	s.Key = k.Public().(ed25519.PublicKey)
	s.Sig = ed25519.Sign(k, signedSecret(s))
	return s
}
