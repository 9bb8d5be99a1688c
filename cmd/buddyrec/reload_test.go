package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/site"
)

// cameraInfo is what srv's API says of camera id (ok false: not recorded).
func cameraInfo(t *testing.T, srv *site.Server, id string) (api.CameraInfo, bool) {
	t.Helper()
	all, err := srv.Cameras(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", srv.Name, err)
	}
	for _, c := range all {
		if c.ID == id {
			return c, true
		}
	}
	return api.CameraInfo{}, false
}

// segmentFiles lists the segment files of a camera under a data folder,
// oldest first (names sort by start time), with their sizes.
func segmentFiles(t *testing.T, dataDir, id string) ([]string, map[string]int64) {
	t.Helper()
	var names []string
	sizes := map[string]int64{}
	filepath.Walk(filepath.Join(dataDir, filepath.FromSlash(id)), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".mp4") {
			names = append(names, p)
			sizes[p] = info.Size()
		}
		return nil
	})
	slices.Sort(names)
	return names, sizes
}

// serverEvents are srv's latest events of one type, newest first.
func serverEvents(t *testing.T, srv *site.Server, typ string) []eventEntry {
	t.Helper()
	var ev struct {
		Events []eventEntry `json:"events"`
	}
	if err := srv.GetJSON(context.Background(), "/api/v1/events?limit=200", &ev); err != nil {
		t.Fatalf("%s events: %v", srv.Name, err)
	}
	var out []eventEntry
	for _, e := range ev.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

type eventEntry struct {
	Type       string    `json:"type"`
	Severity   string    `json:"severity"`
	Text       string    `json:"text"`
	ResolvedAt time.Time `json:"resolved_at"`
}

func hup(t *testing.T, srv *site.Server) {
	t.Helper()
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestReloadCamerasOnSIGHUP: an installer edits a running server's config
// and sends SIGHUP. An added camera starts while the others keep their
// pipeline and their open segment file (the same file grows, no new one),
// and an export across the reload has no gap; a camera whose URL changed
// restarts alone; a removed camera stops. The buddy sees the new record
// (inventory and config hash) through gossip.
func TestReloadCamerasOnSIGHUP(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 3, nil)
	s := startSite(t, site.Spec{Segment: "120s", Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2), Buddies: []string{"rec-b"}},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 30*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), sees(b, "rec-a", "alive")))
	time.Sleep(3 * time.Second)
	from := time.Now().Add(-2 * time.Second)
	hashBefore := inventoryOf(t, b, "rec-a").ConfigHash
	cam1, _ := cameraInfo(t, a, "rec-a/cam1")
	cam2, _ := cameraInfo(t, a, "rec-a/cam2")
	files1, sizes1 := segmentFiles(t, a.DataDir, "rec-a/cam1")
	if len(files1) != 1 {
		t.Fatalf("rec-a/cam1 has segment files %v before the reload, want one open file", files1)
	}

	// 1. Add cam3.
	if err := s.Rewrite("rec-a", func(ss *site.ServerSpec) { ss.Cameras = append(ss.Cameras, cams(c, 3, 3)...) }); err != nil {
		t.Fatal(err)
	}
	hup(t, a)
	eventually(t, 20*time.Second, recordsExactly(a, "rec-a/cam1", "rec-a/cam2", "rec-a/cam3"))
	eventually(t, 10*time.Second, func() string {
		inv := inventoryOf(t, b, "rec-a")
		if inv.ConfigHash == hashBefore || !slices.ContainsFunc(inv.Inventory, func(h api.HomeCamera) bool { return h.ID == "rec-a/cam3" }) {
			return fmt.Sprintf("rec-b sees rec-a's record %+v, want cam3 and a config hash other than %s", inv, hashBefore)
		}
		return ""
	})
	if ev := serverEvents(t, a, "config.reloaded"); len(ev) != 1 || !strings.Contains(ev[0].Text, "cameras added: cam3") {
		t.Errorf("config.reloaded events %+v, want one naming cam3", ev)
	}
	time.Sleep(3 * time.Second)
	for _, before := range []api.CameraInfo{cam1, cam2} {
		now, ok := cameraInfo(t, a, before.ID)
		if !ok || now.State != "recording" || !now.Since.Equal(before.Since) || now.Reconnects != before.Reconnects || now.FramesReceived <= before.FramesReceived {
			t.Errorf("%s after adding cam3: %+v, want the same pipeline recording on (before: since %s, %d frames)", before.ID, now, before.Since, before.FramesReceived)
		}
	}
	files2, sizes2 := segmentFiles(t, a.DataDir, "rec-a/cam1")
	if !slices.Equal(files1, files2) || sizes2[files1[0]] <= sizes1[files1[0]] {
		t.Errorf("rec-a/cam1's segment files went from %v (%v) to %v (%v): want the same file, grown", files1, sizes1, files2, sizes2)
	}
	to := indexedTo(t, a, "rec-a/cam1")
	q := url.Values{"camera": {"rec-a/cam1"}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	resp, err := http.Get("http://" + a.HTTP + "/api/v1/export?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gaps := resp.Header.Get(export.GapsHeader); resp.StatusCode != http.StatusOK || gaps != "" && gaps != "[]" {
		t.Errorf("export of rec-a/cam1 across the reload: %s, %s %q, want 200 and no gap", resp.Status, export.GapsHeader, resp.Header.Get(export.GapsHeader))
	}

	// 2. cam2's URL changes (another stream): cam2 restarts, cam1 and cam3 do not.
	cam1, _ = cameraInfo(t, a, "rec-a/cam1")
	cam3, _ := cameraInfo(t, a, "rec-a/cam3")
	changedAt := time.Now()
	if err := s.Rewrite("rec-a", func(ss *site.ServerSpec) { ss.Cameras[1].URL = c.URL(3) }); err != nil {
		t.Fatal(err)
	}
	hup(t, a)
	eventually(t, 20*time.Second, func() string {
		now, ok := cameraInfo(t, a, "rec-a/cam2")
		if !ok || now.State != "recording" || !now.Since.After(changedAt) {
			return fmt.Sprintf("rec-a/cam2 %+v: want a new pipeline recording since the reload at %s", now, changedAt)
		}
		return ""
	})
	for _, before := range []api.CameraInfo{cam1, cam3} {
		if now, _ := cameraInfo(t, a, before.ID); !now.Since.Equal(before.Since) || now.Reconnects != before.Reconnects {
			t.Errorf("%s restarted when only cam2's URL changed: since %s → %s", before.ID, before.Since, now.Since)
		}
	}

	// 3. Remove cam3: it stops, on rec-a and everywhere.
	if err := s.Rewrite("rec-a", func(ss *site.ServerSpec) { ss.Cameras = ss.Cameras[:2] }); err != nil {
		t.Fatal(err)
	}
	hup(t, a)
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), recordsExactly(b)))
	if now, _ := cameraInfo(t, a, "rec-a/cam1"); !now.Since.Equal(cam1.Since) {
		t.Errorf("rec-a/cam1 restarted when cam3 was removed")
	}
	eventually(t, 10*time.Second, func() string {
		log, _ := os.ReadFile(a.Log)
		for _, want := range []string{"cameras added: cam3", "cameras restarted: cam2", "cameras removed: cam3"} {
			if !strings.Contains(string(log), want) {
				return fmt.Sprintf("rec-a's log lacks %q", want)
			}
		}
		return ""
	})
}

// inventoryOf is what srv's cluster view says of server name.
func inventoryOf(t *testing.T, srv *site.Server, name string) api.ServerInfo {
	t.Helper()
	servers, err := srv.Cluster(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", srv.Name, err)
	}
	for _, si := range servers {
		if si.Name == name {
			return si
		}
	}
	return api.ServerInfo{}
}

// TestReloadRefusedKeepsRunning: a config with a syntax error, then one
// that changes a key needing a restart, are refused whole: the server
// keeps recording what it recorded, the log and a config.reload_failed
// alarm name the problem with file:line and never the camera password,
// and systemd hears RELOADING=1 then READY=1. `buddyrec reload` (which
// authenticates with the config's gossip key) with a fixed config applies
// it and resolves the alarm.
func TestReloadRefusedKeepsRunning(t *testing.T) {
	conn := notifySocket(t)
	c := startCameras(t, 2, nil)
	const password = "hunter2-reload"
	withPassword := strings.Replace(c.URL(1), "rtsp://", "rtsp://admin:"+password+"@", 1)
	// With users, so that `buddyrec reload` must authenticate (with the
	// peer token of the config's gossip key).
	s := startSite(t, site.Spec{User: "tech", Password: "tech-password-1", Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: []site.Camera{{Name: "cam1", URL: withPassword}}},
	}})
	a := s.Server("rec-a")
	if got := nextNotification(t, conn, 30*time.Second); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	eventually(t, 20*time.Second, recordsExactly(a, "rec-a/cam1"))
	cam1, _ := cameraInfo(t, a, "rec-a/cam1")
	good, err := os.ReadFile(a.Config)
	if err != nil {
		t.Fatal(err)
	}

	// 1. A syntax error, on a line holding the password.
	broken := string(good) + "\n[[camera]]\nname = \"cam2\"\nurl = \"rtsp://admin:" + password + "@127.0.0.1:1/x\n"
	if err := os.WriteFile(a.Config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	hup(t, a)
	if got := nextNotification(t, conn, 20*time.Second); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("on SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := nextNotification(t, conn, 20*time.Second); !strings.HasPrefix(got, "READY=1\nSTATUS=config reload refused") {
		t.Errorf("after a refused reload: %q, want READY=1 with the refusal as status", got)
	}
	var alarm eventEntry
	eventually(t, 10*time.Second, func() string {
		ev := serverEvents(t, a, "config.reload_failed")
		if len(ev) != 1 {
			return fmt.Sprintf("config.reload_failed events %+v, want one", ev)
		}
		alarm = ev[0]
		return ""
	})
	if alarm.Severity != "alarm" || !alarm.ResolvedAt.IsZero() || !strings.Contains(alarm.Text, a.Config+":") {
		t.Errorf("alarm %+v: want an unresolved alarm naming %s:LINE", alarm, a.Config)
	}
	if !a.Running() || a.Exited() {
		t.Fatal("rec-a stopped on a broken config")
	}
	if now, ok := cameraInfo(t, a, "rec-a/cam1"); !ok || !now.Since.Equal(cam1.Since) {
		t.Errorf("rec-a/cam1 after a refused reload: %+v, want the same pipeline", now)
	}

	// 2. A valid file that changes a restart-only key: `buddyrec reload`
	// reports the key and that a restart applies it; nothing changes.
	restartOnly := strings.Replace(string(good), `segment = "10s"`, `segment = "20s"`, 1)
	restartOnly += "\n[[camera]]\nname = \"cam2\"\nurl = \"" + c.URL(2) + "\"\n"
	if err := os.WriteFile(a.Config, []byte(restartOnly), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("reload", "-config", a.Config)
	if code != 1 || !strings.Contains(errOut, "storage.segment") || !strings.Contains(errOut, "restart") || !strings.Contains(errOut, a.Config+":") {
		t.Errorf("buddyrec reload of a restart-only change: exit %d\n%s\n%s", code, out, errOut)
	}
	time.Sleep(2 * time.Second)
	eventually(t, time.Second, recordsExactly(a, "rec-a/cam1"))
	if ev := serverEvents(t, a, "config.reload_failed"); len(ev) != 2 || !ev[0].ResolvedAt.IsZero() || ev[1].ResolvedAt.IsZero() {
		t.Errorf("after the second refusal: %+v, want the newest open and the first superseded", ev)
	}

	// 3. The fixed file: applied, the alarm resolved.
	fixed := string(good) + "\n[[camera]]\nname = \"cam2\"\nurl = \"" + c.URL(2) + "\"\n"
	if err := os.WriteFile(a.Config, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd("reload", "-config", a.Config)
	if code != 0 || !strings.Contains(out, "cameras added: cam2") {
		t.Errorf("buddyrec reload of a good config: exit %d\n%s\n%s", code, out, errOut)
	}
	eventually(t, 20*time.Second, recordsExactly(a, "rec-a/cam1", "rec-a/cam2"))
	for _, e := range serverEvents(t, a, "config.reload_failed") {
		if e.ResolvedAt.IsZero() {
			t.Errorf("alarm %+v still open after a good reload", e)
		}
	}
	if now, _ := cameraInfo(t, a, "rec-a/cam1"); !now.Since.Equal(cam1.Since) {
		t.Errorf("rec-a/cam1 restarted by reloads that did not change it")
	}
	log, _ := os.ReadFile(a.Log)
	if strings.Contains(string(log), password) {
		t.Errorf("rec-a's log shows the camera password")
	}
	if !strings.Contains(string(log), "config reload refused") {
		t.Errorf("rec-a's log does not report the refusals")
	}
	if out, err := exec.Command(testBin, "reload", "-config", filepath.Join(t.TempDir(), "missing.toml")).CombinedOutput(); err == nil {
		t.Errorf("buddyrec reload of a missing file succeeded: %s", out)
	}
}

// TestReloadBuddiesThenFailover: rec-a's buddy list changes from rec-b to
// rec-c by a reload. rec-c receives rec-a's camera credentials and rec-b
// forgets them, without any restart; when rec-a is then killed -9, rec-c
// adopts its camera and rec-b does not.
func TestReloadBuddiesThenFailover(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 1, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}},
		{Name: "rec-b"},
		{Name: "rec-c"},
	}})
	a, b, cc := s.Server("rec-a"), s.Server("rec-b"), s.Server("rec-c")
	eventually(t, 30*time.Second, all(recordsExactly(a, "rec-a/cam1"), sees(b, "rec-a", "alive"), sees(cc, "rec-a", "alive")))
	logHas := func(srv *site.Server, want string) func() string {
		return func() string {
			b, _ := os.ReadFile(srv.Log)
			if !strings.Contains(string(b), want) {
				return fmt.Sprintf("%s's log lacks %q", srv.Name, want)
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, logHas(b, `msg="received secrets" server=rec-b part=buddy component=buddy from=rec-a`))
	if m := logHas(cc, "from=rec-a")(); m == "" {
		t.Fatal("rec-c received rec-a's secrets before it was named a buddy")
	}

	if err := s.Rewrite("rec-a", func(ss *site.ServerSpec) { ss.Buddies = []string{"rec-c"} }); err != nil {
		t.Fatal(err)
	}
	hup(t, a)
	eventually(t, 20*time.Second, all(
		logHas(a, "changed: failover.buddies"),
		logHas(cc, `msg="received secrets" server=rec-c part=buddy component=buddy from=rec-a`),
		logHas(b, `msg="forgot secrets: no longer a buddy" server=rec-b part=buddy component=buddy of=rec-a`)))
	if now, _ := cameraInfo(t, a, "rec-a/cam1"); now.State != "recording" {
		t.Errorf("rec-a/cam1 after the buddies changed: %+v", now)
	}

	a.Kill()
	eventually(t, 20*time.Second, all(recordsExactly(cc, "rec-a/cam1"), recordsExactly(b)))
	time.Sleep(2 * time.Second)
	eventually(t, time.Second, all(recordsExactly(cc, "rec-a/cam1"), recordsExactly(b)))
}
