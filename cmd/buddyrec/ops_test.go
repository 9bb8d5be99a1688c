package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
