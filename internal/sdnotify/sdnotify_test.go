package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen plays systemd's side: a unixgram socket that receives one
// notification per datagram.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifications(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := fmt.Sprintf("@buddyrec-sdnotify-test-%d", os.Getpid())
	for _, socket := range []string{path, abstract} {
		conn := listen(t, socket)
		n := New(socket)
		tests := []struct {
			name string
			send func() error
			want func(string) bool
		}{
			{"ready", func() error { return n.Ready("") }, eq("READY=1\n")},
			{"ready with status", func() error { return n.Ready("recording 6 cameras\n(3 adopted)") },
				eq("READY=1\nSTATUS=recording 6 cameras (3 adopted)\n")},
			{"reloading", n.Reloading, func(s string) bool {
				rest, ok := strings.CutPrefix(s, "RELOADING=1\nMONOTONIC_USEC=")
				us, err := strconv.ParseInt(strings.TrimSuffix(rest, "\n"), 10, 64)
				return ok && err == nil && us > 0 && strings.HasSuffix(rest, "\n")
			}},
			{"stopping", n.Stopping, eq("STOPPING=1\n")},
			{"watchdog", n.WatchdogPing, eq("WATCHDOG=1\n")},
			{"status", func() error { return n.Status("draining") }, eq("STATUS=draining\n")},
		}
		for _, tc := range tests {
			t.Run(socket[:1]+"/"+tc.name, func(t *testing.T) {
				if err := tc.send(); err != nil {
					t.Fatal(err)
				}
				if got := receive(t, conn); !tc.want(got) {
					t.Errorf("datagram %q", got)
				}
			})
		}
	}
}

func eq(want string) func(string) bool { return func(s string) bool { return s == want } }

func TestNoSocketIsANoOp(t *testing.T) {
	for _, n := range []*Notifier{nil, {}, New("")} {
		if n.Enabled() {
			t.Error("enabled without a socket")
		}
		if err := n.Ready("x"); err != nil {
			t.Errorf("Ready without a socket: %v", err)
		}
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if FromEnv().Enabled() {
		t.Error("FromEnv enabled with an empty NOTIFY_SOCKET")
	}
}

func TestErrors(t *testing.T) {
	gone := New(filepath.Join(t.TempDir(), "nobody-listens"))
	if err := gone.Ready(""); err == nil || !strings.Contains(err.Error(), "sd_notify") {
		t.Errorf("send to a missing socket: %v", err)
	}
	conn := listen(t, filepath.Join(t.TempDir(), "notify"))
	n := New(conn.LocalAddr().String())
	for _, bad := range []string{"READY", "STATUS=a\nREADY=1"} {
		if err := n.Send(bad); err == nil {
			t.Errorf("Send(%q) accepted", bad)
		}
	}
	if err := New("vsock:2:1234").Ready(""); err == nil {
		t.Error("vsock socket accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"30000000", "", 30 * time.Second},
		{"30000000", "42", 30 * time.Second},
		{"30000000", "43", 0}, // another process's watchdog
		{"junk", "", 0},
		{"-5", "", 0},
		{"500000", "x", 0},
	}
	for _, tc := range tests {
		if got := watchdogInterval(tc.usec, tc.pid, 42); got != tc.want {
			t.Errorf("watchdogInterval(%q, %q) = %v, want %v", tc.usec, tc.pid, got, tc.want)
		}
	}
}
