package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/site"
)

// eventsOf is a condition: srv's event log holds an event of type typ
// whose text contains every one of want.
func eventsOf(srv *site.Server, typ string, want ...string) func() string {
	return func() string {
		var ev struct {
			Events []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"events"`
		}
		if err := srv.GetJSON(context.Background(), "/api/v1/events?limit=200", &ev); err != nil {
			return err.Error()
		}
		var seen []string
		for _, e := range ev.Events {
			if e.Type != typ {
				continue
			}
			all := true
			for _, w := range want {
				all = all && strings.Contains(e.Text, w)
			}
			if all {
				return ""
			}
			seen = append(seen, e.Text)
		}
		return fmt.Sprintf("%s has no %s event with %q (has %q)", srv.Name, typ, want, seen)
	}
}

// TestSecondServerWithTakenNameExits: an installer copies rec-a's config
// to another machine and forgets to rename it. The copy (own data_dir,
// so its own node key) refuses to record and exits with a clear error;
// rec-a raises server.name_conflict naming the copy's address and keeps
// recording its camera.
func TestSecondServerWithTakenNameExits(t *testing.T) {
	c := startCameras(t, 1, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), sees(b, "rec-a", "alive"), sees(a, "rec-b", "alive")))

	cfg, err := os.ReadFile(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var fresh []string
	for range 3 {
		p, err := site.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, net.JoinHostPort("127.0.0.1", fmt.Sprint(p)))
	}
	dupGossip := fresh[1]
	copyCfg := strings.NewReplacer(a.HTTP, fresh[0], a.Gossip, dupGossip, a.RTSP, fresh[2], a.DataDir, filepath.Join(dir, "data")).Replace(string(cfg))
	dupPath := filepath.Join(dir, "copy.toml")
	if err := os.WriteFile(dupPath, []byte(copyCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testBin, "run", "-config", dupPath).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the copy did not exit:\n%s", out)
	}
	if err == nil {
		t.Fatalf("the copy named rec-a exited 0:\n%s", out)
	}
	if want := `another server named \"rec-a\" is alive at ` + a.Gossip; !strings.Contains(string(out), want) {
		t.Fatalf("the copy's error does not say %s:\n%s", want, out)
	}
	if strings.Contains(string(out), "failover.started") || strings.Contains(string(out), "recording started") {
		t.Errorf("the copy recorded before exiting:\n%s", out)
	}
	eventually(t, 10*time.Second, eventsOf(a, "server.name_conflict", dupGossip, "rec-a"))
	eventually(t, 10*time.Second, all(recordsExactly(a, "rec-a/cam1"), sees(b, "rec-a", "alive")))
}

// TestForgetCommand: `buddyrec forget` clears a pin on the running server
// through its API, and in cluster.db when the server is stopped.
func TestForgetCommand(t *testing.T) {
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{{Name: "rec-a"}, {Name: "rec-b"}}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(sees(a, "rec-b", "alive"), sees(b, "rec-a", "alive")))
	code, stdout, stderr := runCmd("forget", "-config", a.Config, "rec-b")
	if code != 0 || !strings.Contains(stdout, "rec-a: forgot the node key pinned for rec-b") {
		t.Fatalf("forget on the running server: %d\n%s%s", code, stdout, stderr)
	}
	eventually(t, 10*time.Second, eventsOf(a, "gossip.pin_forgotten", "rec-b"))
	if code, _, stderr := runCmd("forget", "-config", a.Config, "rec-a"); code != 2 || !strings.Contains(stderr, "is this server") {
		t.Fatalf("forgetting oneself: %d %s", code, stderr)
	}
	a.Stop(10 * time.Second)
	code, stdout, stderr = runCmd("forget", "-config", a.Config, "rec-b")
	if code != 0 || !strings.Contains(stdout, "rec-a (not running):") {
		t.Fatalf("forget on the stopped server: %d\n%s%s", code, stdout, stderr)
	}
}

// TestMisnamedRecordFromIntruder: a member holding the site's gossip key
// joins as "x" and publishes a record whose body says it is rec-a, with
// other cameras and no capacity (the observed attack stopped rec-a's
// recording). rec-a keeps recording its camera, both servers raise
// gossip.bad_record naming the intruder's address, and when rec-a is
// killed its buddy still adopts its real camera.
func TestMisnamedRecordFromIntruder(t *testing.T) {
	c := startCameras(t, 3, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}},
		{Name: "rec-b", Cameras: cams(c, 2, 2), Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2"), sees(b, "rec-a", "alive")))

	key, err := config.ReadGossipKey(s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	x, err := buddy.Start(context.Background(), buddy.Options{Name: "x", BindAddr: "127.0.0.1:0", Join: []string{a.Gossip, b.Gossip}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	body := fmt.Sprintf(`{"name":"rec-a","capacity":{"cameras":1},"mode":"all","failback":true,"buddies":["rec-b"],`+
		`"cameras":[{"name":"cam1"},{"name":"evil"}],"claims":["rec-a/evil"],"stable":true,"timing":"200ms/800ms","gossip":%q}`, x.Addr())
	if err := x.SetRecord(buddy.Record{Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	// a record reaches each member by gossip, or at the latest by the
	// next push-pull exchange (every 15 s, buddy/options.go): a loaded
	// machine that drops the UDP broadcast leaves only the latter
	eventually(t, 20*time.Second, all(eventsOf(a, "gossip.bad_record", "x", x.Addr()), eventsOf(b, "gossip.bad_record", "x", x.Addr())))
	time.Sleep(2 * time.Second) // several control rounds with the record in flight
	eventually(t, 5*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2")))
	if msg := eventsOf(a, "capacity.exceeded")(); msg == "" {
		t.Fatal("rec-a raised capacity.exceeded after the intruder's record")
	}
	x.Close()
	a.Kill()
	eventually(t, 20*time.Second, recordsExactly(b, "rec-a/cam1", "rec-b/cam2"))
}
