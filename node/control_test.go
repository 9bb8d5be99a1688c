package node

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/events"
)

func newTestNode(t *testing.T) *Node {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[listen]\nhttp = \"127.0.0.1:0\"\n", dir))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.httpLn.Close(); n.closeStores() })
	return n
}

// TestConfigMismatch: servers that disagree on failover timing, or name a
// buddy no server is called, raise one config.mismatch warning per finding.
func TestConfigMismatch(t *testing.T) {
	n := newTestNode(t)
	st := controlState{
		alive: map[string]bool{"rec-a": true, "rec-b": true},
		records: map[string]recordBody{
			"rec-a": {Name: "rec-a", Timing: "200ms/1s", Buddies: []string{"rec-b"}},
			"rec-b": {Name: "rec-b", Timing: "1s/3s", Buddies: []string{"rec-x"}},
		},
	}
	n.checkConfigs(controlState{}, st)
	n.checkConfigs(st, st) // the same findings again: no second event
	evs, err := n.Events(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != "config.mismatch" {
		t.Fatalf("events = %+v, want one config.mismatch", evs)
	}
	for _, want := range []string{"rec-b uses keepalive/failover_after 1s/3s", `rec-b names buddy "rec-x"`} {
		if !strings.Contains(evs[0].Text, want) {
			t.Errorf("mismatch text %q lacks %q", evs[0].Text, want)
		}
	}
}

// TestKeyMismatchAlarmIsRateLimited: a peer with another key keeps trying;
// the alarm is raised once, not per packet.
func TestKeyMismatchAlarmIsRateLimited(t *testing.T) {
	n := newTestNode(t)
	for range 20 {
		n.keyMismatch("no installed keys could decrypt the message")
	}
	count := func() int {
		evs, _ := n.Events(50)
		count := 0
		for _, e := range evs {
			if e.Type == events.TypeGossipKeyMismatch {
				count++
			}
		}
		return count
	}
	waitFor(t, 5*time.Second, "the gossip.key_mismatch alarm", func() bool { return count() > 0 })
	if c := count(); c != 1 {
		t.Fatalf("%d gossip.key_mismatch alarms for 20 bad packets, want 1", c)
	}
}

// TestRecordLoadChangesSlowly: the load inside the replicated record is
// measured again only every loadEvery, so a wobbling CPU figure does not
// republish a record every member must receive; the server's own API
// answer stays current.
func TestRecordLoadChangesSlowly(t *testing.T) {
	n := newTestNode(t)
	t0 := time.Now()
	first := n.selfRecord(t0, nil, nil)
	if first.Load.MemoryBytes == 0 {
		t.Fatalf("first record has no load measured: %+v", first.Load)
	}
	n.lastLoad.CPU = 0.42 // as if measured so at t0
	if got := n.selfRecord(t0.Add(loadEvery/2), nil, nil).Load.CPU; got != 0.42 {
		t.Errorf("load in the record half a period later: CPU %v, want the published 0.42", got)
	}
	if got := n.selfRecord(t0.Add(loadEvery+time.Second), nil, nil).Load.CPU; got == 0.42 {
		t.Errorf("load in the record after a period: CPU still %v, want a new measurement", got)
	}
}

// TestTakeoverNoticeScheme: the notice tells the PSIM the address that now
// serves the cameras, so it must say https when the server serves TLS.
func TestTakeoverNoticeScheme(t *testing.T) {
	n := newTestNode(t)
	if got := n.takeoverNotice("failover.completed", "rec-b", []string{"rec-b/door"}).Address.HTTP; got != "http://"+n.cfg.Listen.HTTP {
		t.Errorf("plain HTTP server: notice address %q", got)
	}
	n.cfg.HTTP.CertFile, n.cfg.HTTP.KeyFile = "cert.pem", "key.pem"
	if got := n.takeoverNotice("failover.completed", "rec-b", []string{"rec-b/door"}).Address.HTTP; got != "https://"+n.cfg.Listen.HTTP {
		t.Errorf("TLS server: notice address %q, want https://%s", got, n.cfg.Listen.HTTP)
	}
}
