package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/webhook"
)

func newTestNode(t *testing.T) *Node { return newTestNodeWith(t, "") }

// newTestNodeWith is newTestNode with more config (tables) after its own.
func newTestNodeWith(t *testing.T, more string) *Node {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = \"127.0.0.1:0\"\n%s", dir, more))
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
		n.keyMismatch("127.0.0.9:7946", "no installed keys could decrypt the message")
	}
	count := func() int {
		evs, _ := n.Events(50)
		count := 0
		for _, e := range evs {
			if e.Type == events.TypeGossipKeyMismatch {
				count++
				if !strings.Contains(e.Text, "127.0.0.9:7946") {
					t.Fatalf("key mismatch alarm does not name the peer's address: %q", e.Text)
				}
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
	if got := n.takeoverNotice(string(events.TypeFailoverCompleted), "rec-b", []string{"rec-b/door"}).Address.HTTP; got != "http://"+n.cfg.Listen.HTTP {
		t.Errorf("plain HTTP server: notice address %q", got)
	}
	n.cfg.HTTP.CertFile, n.cfg.HTTP.KeyFile = "cert.pem", "key.pem"
	if got := n.takeoverNotice(string(events.TypeFailoverCompleted), "rec-b", []string{"rec-b/door"}).Address.HTTP; got != "https://"+n.cfg.Listen.HTTP {
		t.Errorf("TLS server: notice address %q, want https://%s", got, n.cfg.Listen.HTTP)
	}
}

// TestCloseWithoutRunAndRunAfterClose: Close releases what New opened when
// Run never ran (the data_dir can be opened again at once), is idempotent,
// and Run after Close refuses to start.
func TestCloseWithoutRunAndRunAfterClose(t *testing.T) {
	n := newTestNode(t)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	again, err := New(Options{Config: n.cfg})
	if err != nil {
		t.Fatalf("New on the same data_dir after Close: %v", err)
	}
	again.Close()
}

// TestNoticeAddressReachable: a server listening on a wildcard address
// names its gossip host in notices and live URLs, not 0.0.0.0, which no
// PSIM can dial.
func TestNoticeAddressReachable(t *testing.T) {
	n := newTestNode(t)
	n.cfg.Listen.Gossip = "10.1.2.3:7946"
	n.cfg.Listen.HTTP = "0.0.0.0:8080"
	n.cfg.Listen.RTSP = ":8554"
	nt := n.takeoverNotice(string(events.TypeFailoverCompleted), "rec-b", []string{"rec-b/door"})
	if nt.Address.IP != "10.1.2.3" || nt.Address.HTTP != "http://10.1.2.3:8080" || nt.Address.RTSP != "rtsp://10.1.2.3:8554" ||
		nt.Cameras[0].LiveURL != "rtsp://10.1.2.3:8554/rec-b/door" {
		t.Errorf("notice addresses %+v %+v", nt.Address, nt.Cameras)
	}
	n.cfg.Listen.RTSP = "127.0.0.5:8554"
	if got := n.liveURL("rec-b/door"); got != "rtsp://127.0.0.5:8554/rec-b/door" {
		t.Errorf("specific address changed: %s", got)
	}
}

// TestNoticeOfRules: notices of cameras this server does not serve (a
// capacity alarm) carry the cameras as an array without live URLs; those
// it serves carry its address and live URLs.
func TestNoticeOfRules(t *testing.T) {
	n := newTestNode(t)
	n.cfg.Listen.RTSP = "127.0.0.1:8554"
	c := n.notice(control.Notice{Type: control.TypeCapacityExceeded, Cameras: []string{"rec-b/x", "rec-b/y"}, Text: "2 unrecorded"})
	if len(c.Cameras) != 2 || c.Cameras[1].ID != "rec-b/y" || c.Cameras[0].LiveURL != "" || c.Address != nil {
		t.Errorf("capacity notice %+v", c)
	}
	f := n.notice(control.Notice{Type: control.TypeFailoverCompleted, FailedServer: "rec-b", Cameras: []string{"rec-b/x"}, Serving: true,
		Aspects: []control.Aspect{{Kind: "io", Name: "door"}}})
	if f.Address == nil || f.Cameras[0].LiveURL != "rtsp://127.0.0.1:8554/rec-b/x" || f.FailedServer != "rec-b" || len(f.Aspects) != 1 {
		t.Errorf("takeover notice %+v", f)
	}
}

// TestControlVocabulary: control/ cannot import events or recorder (they
// do I/O), so it names the event types, severities and pipeline states it
// uses itself; they must be the ones the event log, the page and the
// recorder use.
func TestControlVocabulary(t *testing.T) {
	for _, p := range []struct {
		rules string
		vocab events.Type
	}{
		{control.TypeServerDown, events.TypeServerDown},
		{control.TypeServerUp, events.TypeServerUp},
		{control.TypeFailoverStarted, events.TypeFailoverStarted},
		{control.TypeFailoverCompleted, events.TypeFailoverCompleted},
		{control.TypeFailoverReleased, events.TypeFailoverReleased},
		{control.TypeFailbackCompleted, events.TypeFailbackCompleted},
		{control.TypeCapacityExceeded, events.TypeCapacityExceeded},
		{control.TypeCapacityRestored, events.TypeCapacityRestored},
		{control.TypeCameraOffline, events.TypeCameraOffline},
		{control.TypeCameraOnline, events.TypeCameraOnline},
		{control.TypeCameraAuthFailed, events.TypeCameraAuthFailed},
		{control.TypeRecordingStalled, events.TypeRecordingStalled},
		{control.TypeConfigMismatch, events.TypeConfigMismatch},
		{control.TypeNoCredentials, events.TypeFailoverNoCredentials},
		{control.TypeAlarmResolved, events.TypeAlarmResolved},
	} {
		if events.Type(p.rules) != p.vocab {
			t.Errorf("control type %q, events type %q", p.rules, p.vocab)
		}
	}
	for _, p := range [][2]string{
		{control.SeverityInfo, string(events.SeverityInfo)},
		{control.SeverityWarning, string(events.SeverityWarning)},
		{control.SeverityAlarm, string(events.SeverityAlarm)},
		{control.PipelineConnecting, recorder.StateConnecting},
		{control.PipelineRecording, recorder.StateRecording},
		{control.PipelineOffline, recorder.StateOffline},
	} {
		if p[0] != p[1] {
			t.Errorf("control says %q, the vocabulary %q", p[0], p[1])
		}
	}
}

// TestRoundEventsCarryTheRoundsTime: the events and PSIM notices a
// control round concludes carry the round's time, when the round saw
// what they report (a buddy gone silent), not when they were appended
// after the recorder was told: carrying out a takeover of many hot
// standbys takes tens of milliseconds, and a notice time taken after it
// would put the detection that late.
func TestRoundEventsCarryTheRoundsTime(t *testing.T) {
	bodies := make(chan []byte, 4)
	psim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer psim.Close()
	secret := filepath.Join(t.TempDir(), "psim.secret")
	if err := os.WriteFile(secret, []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newTestNodeWith(t, fmt.Sprintf("[[psim]]\nurl = %q\nsecret_file = %q\n", psim.URL, secret))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.outbox.Run(ctx)
	n.gathered = map[string]recordBody{}

	// A round an hour ago: any time taken while carrying it out differs.
	round := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	n.execute(round, control.State{}, control.Actions{
		Events:  []control.Event{{Type: string(events.TypeServerDown), Severity: string(events.SeverityAlarm), About: "rec-b", Text: "rec-b is down"}},
		Notices: []control.Notice{{Type: string(events.TypeServerDown), FailedServer: "rec-b", Text: "rec-b is down"}},
	}, control.Inputs{})

	list, _, err := n.events.List(time.Time{}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range list {
		if e.Type == events.TypeServerDown {
			found = true
			if !e.Time.Equal(round) {
				t.Errorf("server.down event time %s, want the round's %s", e.Time, round)
			}
		}
	}
	if !found {
		t.Fatalf("no server.down event in %+v", list)
	}
	select {
	case b := <-bodies:
		var nt webhook.Notice
		if err := json.Unmarshal(b, &nt); err != nil {
			t.Fatalf("notice %s: %v", b, err)
		}
		if nt.Type != string(events.TypeServerDown) || !nt.Time.Equal(round) {
			t.Errorf("PSIM notice %s at %s, want server.down at the round's %s", nt.Type, nt.Time, round)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the PSIM got no notice within 10 s")
	}
}

// TestPipelineCamerasFollowTheConfigInForce: the recorder's view of this
// server's cameras is built once per configuration, and a reload (a new
// configuration in force) is seen at the next round: a camera's new URL
// reaches the recorder, a removed camera is no longer asked for.
func TestPipelineCamerasFollowTheConfigInForce(t *testing.T) {
	n := newTestNode(t)
	parse := func(cams string) *config.Config {
		t.Helper()
		c, err := config.Parse(filepath.Join(t.TempDir(), "rec.toml"), fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n%s", n.cfg.DataDir, cams))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ids := []string{"rec-a/door", "rec-a/yard"}
	urls := func() map[string]string {
		out := map[string]string{}
		for _, c := range n.pipelineCameras(ids) {
			out[c.ID] = c.URL
		}
		return out
	}
	n.running.Store(&runningConfig{cfg: parse("[[camera]]\nname = \"door\"\nurl = \"rtsp://127.0.0.1:1/a\"\n[[camera]]\nname = \"yard\"\nurl = \"rtsp://127.0.0.1:1/y\"\n")})
	if got := urls(); got["rec-a/door"] != "rtsp://127.0.0.1:1/a" || got["rec-a/yard"] != "rtsp://127.0.0.1:1/y" {
		t.Fatalf("first config: %v", got)
	}
	n.running.Store(&runningConfig{cfg: parse("[[camera]]\nname = \"door\"\nurl = \"rtsp://127.0.0.1:1/b\"\n")})
	got := urls()
	if got["rec-a/door"] != "rtsp://127.0.0.1:1/b" {
		t.Errorf("after a reload the recorder is given %q for rec-a/door, want the new URL", got["rec-a/door"])
	}
	if _, ok := got["rec-a/yard"]; ok || len(got) != 1 {
		t.Errorf("after a reload that removed rec-a/yard: %v", got)
	}
}
