package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckCommand(t *testing.T) {
	code, out, _ := runCmd("check", "-config", "../../testdata/sites/n-plus-2/rec-a.toml")
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "rec-a/lobby") || strings.Contains(out, "change-me") {
		t.Errorf("check of a good config: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("name = \"x\"\ndata_dir = \"/d\"\n[storage]\nsegment = 60\n[[camera]]\nname = \"c\"\nurl = \"rtsp://u:topsecret@h/\"\ntransport = \"x\"\n"), 0o600)
	code, _, errOut := runCmd("check", "-config", bad)
	if code != 1 || !strings.Contains(errOut, "bad.toml:4: storage.segment") || !strings.Contains(errOut, "bad.toml:8: camera[1].transport") || !strings.Contains(errOut, "2 problem(s)") {
		t.Errorf("check of a bad config: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, "topsecret") {
		t.Error("check prints a camera password")
	}
	if code, _, _ := runCmd("check"); code != 2 {
		t.Errorf("check without -config: exit %d, want 2", code)
	}
}

func TestKeygenAndPasswd(t *testing.T) {
	code, out, _ := runCmd("keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil || len(key) != 32 {
		t.Errorf("keygen: exit %d, %q", code, out)
	}
	code, out, _ = runCmd("keygen", "-webhook")
	if code != 0 || !strings.HasPrefix(out, "whsec_") {
		t.Errorf("keygen -webhook: exit %d, %q", code, out)
	}
	var o, e bytes.Buffer
	if code := cmdPasswd([]string{"tech"}, strings.NewReader("correct horse\n"), &o, &e); code != 0 {
		t.Fatalf("passwd: exit %d: %s", code, e.String())
	}
	user, hash, _ := strings.Cut(strings.TrimSpace(o.String()), ":")
	if user != "tech" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil {
		t.Errorf("passwd printed %q", o.String())
	}
	if code := cmdPasswd([]string{"tech"}, strings.NewReader("short\n"), &o, &e); code == 0 {
		t.Error("passwd accepted a short password")
	}
}

// TestBenchPlannerSmall runs the planner benchmark on a small site: after
// three of twelve servers crash, every live server must reach the same plan
// with no camera owned twice and none left unplaced.
func TestBenchPlannerSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 12 gossip members")
	}
	code, out, errOut := runCmd("bench", "planner", "-servers", "12", "-cameras", "10", "-kill", "3", "-replan", "250ms")
	if code != 0 {
		t.Fatalf("bench planner: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"all 12 plans agree",
		"3 servers crashed at once: every live server's plan agrees",
		"cameras owned by two live servers: 0 at agreement, 0 two seconds later; unplaced: 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bench planner output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, _ := runCmd("version")
	if code != 0 || !strings.HasPrefix(out, "buddyrec ") || !strings.Contains(out, "\ncommit:") || !strings.Contains(out, "\ngo:         go1.") {
		t.Errorf("version: exit %d\n%s", code, out)
	}
}
