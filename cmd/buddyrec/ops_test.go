package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/site"
)

// notifySocket plays systemd's side of sd_notify for servers started after
// it: they inherit NOTIFY_SOCKET.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func nextNotification(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %s: %v", timeout, err)
	}
	return string(buf[:n])
}

// TestReadyNotificationOnceRecording: under Type=notify, READY=1 comes
// only when the server's cameras record, and STOPPING=1 on SIGTERM.
func TestReadyNotificationOnceRecording(t *testing.T) {
	conn := notifySocket(t)
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{{Name: "rec-a", Cameras: cams(c, 1, 2)}}})
	srv := s.Server("rec-a")
	got := nextNotification(t, conn, 30*time.Second)
	if !strings.HasPrefix(got, "READY=1\nSTATUS=recording 2 of 2 camera(s)") {
		t.Fatalf("first notification %q, want READY=1 with both cameras recording", got)
	}
	rec, err := srv.Recording(context.Background())
	if err != nil || !rec["rec-a/cam1"] || !rec["rec-a/cam2"] {
		t.Fatalf("READY sent while the API reports recording %v (%v)", rec, err)
	}
	srv.Stop(10 * time.Second)
	if got := nextNotification(t, conn, 10*time.Second); got != "STOPPING=1\n" {
		t.Errorf("on SIGTERM: %q, want STOPPING=1", got)
	}
}

// TestPlanPreviewMatchesRealFailover: the plan a survivor previews for
// rec-a's failure is what the site does when rec-a is then killed -9,
// camera for camera, unrecorded ones included; `buddyrec plan` prints it
// with the config's own credentials.
func TestPlanPreviewMatchesRealFailover(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 6, nil)
	s := startSite(t, site.Spec{User: "tech", Password: "tech-password",
		Servers: []site.ServerSpec{
			{Name: "rec-a", Cameras: cams(c, 1, 4, 1), Buddies: []string{"rec-b", "rec-c"}},
			{Name: "rec-b", Cameras: cams(c, 5, 6), Buddies: []string{"rec-a", "rec-c"}, Capacity: 4},
			{Name: "rec-c", Capacity: 1},
		}})
	a, b, cc := s.Server("rec-a"), s.Server("rec-b"), s.Server("rec-c")
	eventually(t, 60*time.Second, all(
		recordsExactly(a, "rec-a/cam1", "rec-a/cam2", "rec-a/cam3", "rec-a/cam4"),
		recordsExactly(b, "rec-b/cam5", "rec-b/cam6"),
		recordsExactly(cc),
		sees(b, "rec-a", "alive"), sees(b, "rec-c", "alive"), sees(cc, "rec-a", "alive"), sees(cc, "rec-b", "alive")))

	ctx := context.Background()
	var fromB, fromC api.PlanPreview
	// Both survivors plan from the same gossiped view, so they agree.
	eventually(t, 30*time.Second, func() string {
		if err := b.GetJSON(ctx, "/api/v1/plan?fail=rec-a", &fromB); err != nil {
			return err.Error()
		}
		if err := cc.GetJSON(ctx, "/api/v1/plan?fail=rec-a", &fromC); err != nil {
			return err.Error()
		}
		if !reflect.DeepEqual(fromB, fromC) {
			return fmt.Sprintf("rec-b previews %+v, rec-c %+v", fromB, fromC)
		}
		return ""
	})
	if len(fromB.Cameras) != 5 || len(fromB.Unplaced) != 1 || !reflect.DeepEqual(fromB.Fail, []string{"rec-a"}) {
		t.Fatalf("preview %+v: want 5 placed (rec-b has room for 2, rec-c for 1) and 1 unplaced", fromB)
	}
	want := map[string][]string{}
	for _, pc := range fromB.Cameras {
		if pc.Server == "rec-a" {
			t.Fatalf("preview gives %s to the failed server", pc.ID)
		}
		want[pc.Server] = append(want[pc.Server], pc.ID)
	}
	if !slices.Contains(want["rec-b"], "rec-a/cam1") && !slices.Contains(want["rec-c"], "rec-a/cam1") {
		t.Errorf("critical rec-a/cam1 not placed: %+v", fromB)
	}
	if got := fromB.IfFails("rec-a").String(); got != "2 → rec-b, 1 → rec-c, 1 not recorded" {
		t.Errorf("summary %q", got)
	}

	// The command prints the same plan, authenticated by the config alone.
	out, err := exec.Command(testBin, "plan", "-config", b.Config, "-fail", "rec-a").CombinedOutput()
	if err != nil {
		t.Fatalf("buddyrec plan: %v\n%s", err, out)
	}
	for _, pc := range fromB.Cameras {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pc.ID) + ` +` + regexp.QuoteMeta(pc.Server) + `\b`).Match(out) {
			t.Errorf("buddyrec plan lacks %s → %s:\n%s", pc.ID, pc.Server, out)
		}
	}
	if !strings.Contains(string(out), fromB.Unplaced[0]+"  NOT RECORDED") || !strings.Contains(string(out), "rec-a fails: 2 → rec-b, 1 → rec-c, 1 not recorded") {
		t.Errorf("buddyrec plan output:\n%s", out)
	}
	if code, _, errOut := runCmd("plan", "-config", b.Config, "-fail", "rec-x"); code != 1 || !strings.Contains(errOut, `no server of the site is called "rec-x"`) {
		t.Errorf("plan -fail rec-x: exit %d: %s", code, errOut)
	}

	// Now for real.
	a.Kill()
	eventually(t, 30*time.Second, all(recordsExactly(b, want["rec-b"]...), recordsExactly(cc, want["rec-c"]...)))
	// And it stays so: the unplaced camera is not picked up later either.
	time.Sleep(3 * time.Second)
	eventually(t, time.Second, all(recordsExactly(b, want["rec-b"]...), recordsExactly(cc, want["rec-c"]...)))
}
