package node

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
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
	t.Cleanup(func() { n.Close() })
	return n
}

// TestKeyMismatchAlarmIsRateLimited: a peer with another key keeps trying;
// the alarm is raised once, not per packet.
func TestKeyMismatchAlarmIsRateLimited(t *testing.T) {
	n := newTestNode(t)
	for range 20 {
		n.keyMismatch("no installed keys could decrypt the message")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, _ := n.Events(50)
		count := 0
		for _, e := range evs {
			if e.Type == "gossip.key_mismatch" {
				count++
			}
		}
		if count == 1 {
			break
		}
		if count > 1 || time.Now().After(deadline) {
			t.Fatalf("%d gossip.key_mismatch alarms for 20 bad packets, want 1", count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRecordLoadChangesSlowly: the load inside the replicated record is
// measured again only every loadEvery, so a wobbling CPU figure does not
// republish a record every member must receive; the server's own API
// answer stays current.
func TestRecordLoadChangesSlowly(t *testing.T) {
	n := newTestNode(t)
	t0 := time.Now()
	first := n.selfRecord(t0, control.Publish{})
	if first.Load.MemoryBytes == 0 {
		t.Fatalf("first record has no load measured: %+v", first.Load)
	}
	n.lastLoad.CPU = 0.42 // as if measured so at t0
	if got := n.selfRecord(t0.Add(loadEvery/2), control.Publish{}).Load.CPU; got != 0.42 {
		t.Errorf("load in the record half a period later: CPU %v, want the published 0.42", got)
	}
	if got := n.selfRecord(t0.Add(loadEvery+time.Second), control.Publish{}).Load.CPU; got == 0.42 {
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
