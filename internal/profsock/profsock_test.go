package profsock

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestServeFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  bool
		want bool // a socket is served
	}{
		{"off without the variable", false, false},
		{"on with the variable", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.env {
				t.Setenv(Env, dir)
			} else {
				t.Setenv(Env, "")
			}
			ctx, cancel := context.WithCancel(context.Background())
			path, err := ServeFromEnv(ctx, "worker7")
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				cancel()
			}()
			socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
			if got := len(socks) > 0; got != tc.want || (path != "") != tc.want {
				t.Fatalf("socket served = %v (path %q, %v), want %v", got, path, socks, tc.want)
			}
			if !tc.want {
				return
			}
			if want := SocketPath(dir, "worker7", os.Getpid()); path != want {
				t.Fatalf("socket at %s, want %s", path, want)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("socket mode: %v %v, want 0600", fi.Mode(), err)
			}
		})
	}
}

func TestServeAnswers(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path, err := Serve(ctx, dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	c := Client(path)
	for _, tc := range []struct {
		path  string
		check func(t *testing.T, body []byte)
	}{
		{CountsPath, func(t *testing.T, body []byte) {
			var n Counts
			if err := json.Unmarshal(body, &n); err != nil {
				t.Fatal(err)
			}
			if n.Role != "server" || n.PID != os.Getpid() || n.Goroutines == 0 || n.HeapGoal == 0 || n.HeapAllocs == 0 {
				t.Fatalf("counts %+v: want role server, this pid, goroutines, a heap goal and bytes allocated", n)
			}
		}},
		{"/debug/pprof/profile?seconds=1", func(t *testing.T, body []byte) {
			// a pprof profile is gzip-compressed protobuf
			if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
				t.Fatalf("profile is not gzip data: % x", body[:min(len(body), 8)])
			}
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := c.Get("http://profile" + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			tc.check(t, body)
		})
	}
	cancel()
}
