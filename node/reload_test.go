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
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/webhook"
)

// TestReloadAppliesPSIMAndUsers: POST /api/v1/reload applies what the
// control loop does not decide: a PSIM target added to the file is sent
// the next notice (signed with its secret), and the users file read again
// lets the new user in and keeps the removed one out. A broken file is
// answered 422 with file:line and changes nothing.
func TestReloadAppliesPSIMAndUsers(t *testing.T) {
	dir := t.TempDir()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 10)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	users := filepath.Join(dir, "users")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(users, "alice:"+hash("alice-password")+"\n")
	const secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"
	write(filepath.Join(dir, "psim.secret"), secret+"\n")

	var mu sync.Mutex
	var got []string
	psim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var nt webhook.Notice
		json.Unmarshal(body, &nt)
		mu.Lock()
		if err := webhook.Verify(secret, r.Header, body, time.Minute); err != nil {
			got = append(got, "unverified "+nt.Type)
		} else {
			got = append(got, nt.Type)
		}
		mu.Unlock()
	}))
	defer psim.Close()

	path := filepath.Join(dir, "rec.toml")
	base := fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = \"127.0.0.1:0\"\n[http]\nusers_file = \"users\"\n", filepath.Join(dir, "data"))
	write(path, base)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); n.Close(); <-done }()
	waitFor(t, 5*time.Second, "http listener", func() bool { return n.HTTPAddr() != "" })

	call := func(method, path, user, pass string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// Add a PSIM and a camera nobody answers for; alice makes way for bob.
	write(path, base+fmt.Sprintf("[[psim]]\nurl = %q\nsecret_file = \"psim.secret\"\n[[camera]]\nname = \"gone\"\nurl = \"rtsp://127.0.0.1:1/x\"\n", psim.URL))
	write(users, "bob:"+hash("bob-password")+"\n")
	code, body := call(http.MethodPost, "/api/v1/reload", "alice", "alice-password")
	var res api.Reload
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil || !res.Applied || len(res.Added) != 1 || res.Added[0] != "gone" {
		t.Fatalf("reload: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "camera.offline notice at the added PSIM", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, typ := range got {
			if typ == "camera.offline" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	for _, typ := range got {
		if strings.HasPrefix(typ, "unverified") {
			t.Errorf("PSIM got %s: not signed with the secret", typ)
		}
	}
	mu.Unlock()
	if code, _ := call(http.MethodGet, "/api/v1/cameras", "alice", "alice-password"); code != http.StatusUnauthorized {
		t.Errorf("removed user alice: %d, want 401", code)
	}
	if code, _ := call(http.MethodGet, "/api/v1/cameras", "bob", "bob-password"); code != http.StatusOK {
		t.Errorf("added user bob: %d, want 200", code)
	}

	// A broken file: 422 with file:line, the running config stays.
	write(path, base+"[[camera]]\nname = \"gone\"\nurl = 42\n")
	code, body = call(http.MethodPost, "/api/v1/reload", "bob", "bob-password")
	res = api.Reload{}
	json.Unmarshal(body, &res)
	if code != http.StatusUnprocessableEntity || res.Applied || len(res.Problems) == 0 || !strings.Contains(res.Problems[0], path+":11") {
		t.Errorf("broken reload: %d %s, want 422 naming %s:11", code, body, path)
	}
	if cams := n.config().Cameras; len(cams) != 1 || cams[0].URL != "rtsp://127.0.0.1:1/x" {
		t.Errorf("config in force after a refused reload: %+v", cams)
	}
}

// TestStartResolvesReloadAlarm: a refused reload's alarm stays open until
// a start from a config without problems resolves it (the server then runs
// the file on disk, whole).
func TestStartResolvesReloadAlarm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.toml")
	good := fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = \"127.0.0.1:0\"\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() (*Node, func()) {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(Options{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		return n, func() { cancel(); n.Close(); <-done }
	}
	alarms := func(n *Node) []string {
		evs, err := n.Events(100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			if e.Type == "config.reload_failed" {
				out = append(out, fmt.Sprintf("resolved=%t", !e.ResolvedAt.IsZero()))
			}
		}
		return out
	}

	n, stop := start()
	if err := os.WriteFile(path, []byte(good+"[storage]\nsegment = \"5s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Reload(context.Background()); !errors.Is(err, ErrReloadRefused) {
		t.Fatalf("reload changing storage.segment: %v, want refused", err)
	}
	if got := alarms(n); len(got) != 1 || got[0] != "resolved=false" {
		t.Fatalf("after the refusal: %v, want one open alarm", got)
	}
	stop()

	// The installer restarts instead, with the file as it is: a start from
	// it resolves the alarm.
	n, stop = start()
	defer stop()
	waitFor(t, 10*time.Second, "the start's event", func() bool {
		got := alarms(n)
		return len(got) == 1 && got[0] == "resolved=true"
	})
}
