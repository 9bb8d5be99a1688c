package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
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

// TestCheckNeverEchoesPasswords runs `check` on the URLs installers get
// wrong and greps its whole output for every fragment (3 bytes or more) of
// the password.
func TestCheckNeverEchoesPasswords(t *testing.T) {
	const pass = "Zq9wXv7Kp"
	urls := []string{
		"rtsp//admin:" + pass + "@10.0.1.21/stream1",
		"rtsp:/admin:" + pass + "@10.0.1.21/stream1",
		"admin:" + pass + "@10.0.1.21/stream1",
		"rtsp://admin:" + pass[:4] + "/" + pass[4:] + "@10.0.1.21/stream1",
		"rtsp://admin:1234#" + pass + "@10.0.1.21/stream1",
		"rtsp://admin:" + pass[:4] + " " + pass[4:] + "@10.0.1.21/stream1",
		"rtsp://admin:" + pass + "/10.0.1.21/stream1",
	}
	var b strings.Builder
	b.WriteString("name = \"rec-a\"\ndata_dir = \"/d\"\n")
	for i, u := range urls {
		fmt.Fprintf(&b, "[[camera]]\nname = \"c%d\"\nurl = %q\n", i, u)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "rec.toml")
	os.WriteFile(bad, []byte(b.String()), 0o600)
	code, out, errOut := runCmd("check", "-config", bad)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("%d problem(s)", len(urls))) {
		t.Errorf("check: exit %d, want 1 and %d problems:\n%s", code, len(urls), errOut)
	}
	for n := 3; n <= len(pass); n++ {
		for i := 0; i+n <= len(pass); i++ {
			if frag := pass[i : i+n]; strings.Contains(out+errOut, frag) {
				t.Fatalf("check output shows %q of the password:\n%s%s", frag, out, errOut)
			}
		}
	}
	for i := range urls {
		if !strings.Contains(errOut, fmt.Sprintf("rec.toml:%d: camera[%d].url", 3*i+5, i+1)) {
			t.Errorf("no problem at rec.toml:%d for camera[%d].url:\n%s", 3*i+5, i+1, errOut)
		}
	}
	t.Logf("check output:\n%s", errOut)

	// A quote in the password breaks the TOML itself: the syntax error
	// must not quote the password either.
	os.WriteFile(bad, []byte("name = \"rec-a\"\ndata_dir = \"/d\"\n[[camera]]\nname = \"c\"\nurl = \"rtsp://admin:Zq9w\"Xv7Kp@10.0.1.21/\"\n"), 0o600)
	code, out, errOut = runCmd("check", "-config", bad)
	if code != 1 || !strings.Contains(errOut, "rec.toml:5") {
		t.Errorf("check of a TOML syntax error: exit %d\n%s", code, errOut)
	}
	for n := 3; n <= len(pass); n++ {
		for i := 0; i+n <= len(pass); i++ {
			if frag := pass[i : i+n]; strings.Contains(out+errOut, frag) {
				t.Fatalf("check output shows %q of the password:\n%s%s", frag, out, errOut)
			}
		}
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, _ := runCmd("version")
	if code != 0 || !strings.HasPrefix(out, "buddyrec ") || !strings.Contains(out, "\ncommit:") || !strings.Contains(out, "\ngo:         go1.") {
		t.Errorf("version: exit %d\n%s", code, out)
	}
}

func TestCheckSiteCommand(t *testing.T) {
	// A folder: every server, then the site with each failure's plan.
	code, out, errOut := runCmd("check", "../../testdata/sites/spread-servers")
	for _, want := range []string{"rec-a.toml: OK (server rec-a, 4 camera(s))", "rec-s.toml: OK", "gossip key sha256:", "if rec-a fails: 4 → rec-s", "site: OK, 0 warning(s)"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check of a folder: exit %d, lacks %q\n%s%s", code, want, out, errOut)
		}
	}
	// Files named one by one; a duplicated camera is a problem (exit 1)
	// shown without its credentials.
	dir := t.TempDir()
	b, _ := os.ReadFile("../../testdata/sites/mirrored/rec-b.toml")
	cam := "\n[[camera]]\nname = \"twin\"\nurl = \"rtsp://other:pw-twin@10.0.1.20/stream1\"\n"
	bPath := filepath.Join(dir, "rec-b.toml")
	// The copied config's relative paths must resolve from its new folder.
	abs, _ := filepath.Abs("../../testdata/sites")
	os.WriteFile(bPath, []byte(strings.ReplaceAll(string(b), `"../`, `"`+abs+`/`)+cam), 0o600)
	code, out, errOut = runCmd("check", "../../testdata/sites/mirrored/rec-a.toml", bPath)
	if code != 1 || !strings.Contains(errOut, "rec-b/twin records 10.0.1.20:554/stream1, which rec-a/lobby") || !strings.Contains(errOut, "1 problem(s) in the site") {
		t.Errorf("check of a site with a camera twice: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "pw-twin") || strings.Contains(out+errOut, "change-me") {
		t.Error("site check prints a camera password")
	}
	// A broken file stops before the site check.
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("name = \"x\"\n"), 0o600)
	if code, _, errOut := runCmd("check", "../../testdata/sites/mirrored/rec-a.toml", bad); code != 1 || !strings.Contains(errOut, "1 of 2 config(s) have problems") {
		t.Errorf("check with a broken file: exit %d\n%s", code, errOut)
	}
}
