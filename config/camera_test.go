package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// leaks returns the first fragment of secret of at least 3 bytes found in
// out, or "".
func leaks(out, secret string) string {
	for n := len(secret); n >= 3; n-- {
		for i := 0; i+n <= len(secret); i++ {
			if frag := secret[i : i+n]; strings.Contains(out, frag) {
				return frag
			}
		}
	}
	return ""
}

func cameraConfig(body string) string {
	return "name = \"rec-a\"\ndata_dir = \"/d\"\n[[camera]]\nname = \"lobby\"\n" + body
}

// TestMalformedURLNeverEchoesPassword: whatever an installer types, no
// fragment of the password (3 bytes or more) appears in a problem or the
// summary, and a password that broke the URL gets a hint.
func TestMalformedURLNeverEchoesPassword(t *testing.T) {
	const pass = "Zq9wXv7Kp"
	for _, tc := range []struct {
		name, url string
		hint      string // in the problem; "" means the URL is valid
	}{
		{"no colon", "rtsp//admin:" + pass + "@10.0.1.21/stream1", "must start with rtsp://"},
		{"one slash", "rtsp:/admin:" + pass + "@10.0.1.21/stream1", "must start with rtsp://"},
		{"no scheme", "admin:" + pass + "@10.0.1.21/stream1", "must start with rtsp://"},
		{"http scheme", "http://admin:" + pass + "@10.0.1.21/stream1", "must start with rtsp://"},
		{"at in password", "rtsp://admin:" + pass[:4] + "@" + pass[4:] + "@10.0.1.21/stream1", ""},
		{"colon in password", "rtsp://admin:" + pass[:4] + ":" + pass[4:] + "@10.0.1.21/stream1", ""},
		{"slash in password", "rtsp://admin:" + pass[:4] + "/" + pass[4:] + "@10.0.1.21/stream1", "percent-encode"},
		{"slash after digits", "rtsp://admin:1234/" + pass + "@10.0.1.21/stream1", "percent-encode"},
		{"hash in password", "rtsp://admin:" + pass[:4] + "#" + pass[4:] + "@10.0.1.21/stream1", "percent-encode"},
		{"hash after digits", "rtsp://admin:1234#" + pass + "@10.0.1.21/stream1", "percent-encode"},
		{"question mark", "rtsp://admin:" + pass[:4] + "?" + pass[4:] + "@10.0.1.21/stream1", "percent-encode"},
		{"space in password", "rtsp://admin:" + pass[:4] + " " + pass[4:] + "@10.0.1.21/stream1", "percent-encode"},
		{"leading space", " rtsp://admin:" + pass + "@10.0.1.21/stream1", "space"},
		{"no host", "rtsp://admin:" + pass + "@/stream1", "no host"},
		{"bad percent", "rtsp://admin:" + pass + "%zz@10.0.1.21/stream1", "percent-encode"},
		{"missing at", "rtsp://admin:" + pass + "/10.0.1.21/stream1", "percent-encode"},
		{"no at no scheme", "admin:" + pass + "/10.0.1.21", "must start with rtsp://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := cameraConfig("url = " + tomlString(tc.url) + "\n")
			c, err := Parse("/etc/buddyrec/rec.toml", src)
			var out string
			if err != nil {
				out = err.Error()
			} else {
				out = c.Summary()
			}
			if frag := leaks(out, pass); frag != "" {
				t.Errorf("output shows %q of the password:\n%s", frag, out)
			}
			if tc.hint == "" {
				if err != nil {
					t.Errorf("valid URL rejected: %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if ps[0].Line != 5 || ps[0].Key != "camera[1].url" || !strings.Contains(ps[0].Msg, tc.hint) {
				t.Errorf("problem %q: want line 5, camera[1].url, hint %q", ps[0], tc.hint)
			}
		})
	}
}

func tomlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func TestDisplayURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://10.0.1.21/stream1", "rtsp://10.0.1.21/stream1"},
		{"rtsp://admin:secret@10.0.1.21:554/s", "rtsp://admin:xxxxx@10.0.1.21:554/s"},
		{"rtsp://admin:secret@10.0.1.21/s?token=abc", "rtsp://admin:xxxxx@10.0.1.21/s?redacted"},
		{"rtsp//admin:secret@10.0.1.21/s", "xxxxx@10.0.1.21/s"},
		{"rtsp://admin:12/secret@10.0.1.21/s", "xxxxx@10.0.1.21/s"},
		{"rtsp://admin:secret@10.0.1.21/s#x", "rtsp://admin:xxxxx@10.0.1.21/s"},
		{"admin:secret/10.0.1.21", "(URL not shown: it may hold a password)"},
		{"10.0.1.21:554/s", "10.0.1.21:554/s"},
		{"rtsp://admin:secret/10.0.1.21", "(URL not shown: it may hold a password)"},
		{"rtsp://10.0.1.21/s?token=abc", "rtsp://10.0.1.21/s?redacted"},
	} {
		if got := DisplayURL(tc.in); got != tc.want {
			t.Errorf("DisplayURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCredentialKeys: user with password or password_file reaches the URL
// the recorder uses, percent-encoded so that any character survives.
func TestCredentialKeys(t *testing.T) {
	dir := t.TempDir()
	const hard = "p@ss:w/rd#1?%x y"
	passFile := filepath.Join(dir, "lobby.pass")
	if err := os.WriteFile(passFile, []byte(hard+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		"url = \"rtsp://10.0.1.21:554/stream1\"\nuser = \"ad:min\"\npassword = " + tomlString(hard) + "\n",
		"url = \"rtsp://10.0.1.21:554/stream1\"\nuser = \"ad:min\"\npassword_file = \"lobby.pass\"\n",
	} {
		path := filepath.Join(dir, "rec.toml")
		if err := os.WriteFile(path, []byte(cameraConfig(body)), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		u, err := url.Parse(c.Cameras[0].URL)
		if err != nil {
			t.Fatalf("merged URL does not parse: %v", err)
		}
		pw, _ := u.User.Password()
		if u.User.Username() != "ad:min" || pw != hard || u.Host != "10.0.1.21:554" || u.Path != "/stream1" {
			t.Errorf("merged URL carries user %q password %q host %q path %q", u.User.Username(), pw, u.Host, u.Path)
		}
		sum := c.Summary()
		if frag := leaks(sum, hard); frag != "" {
			t.Errorf("summary shows %q of the password:\n%s", frag, sum)
		}
		if !strings.Contains(sum, "ad%3Amin:xxxxx@10.0.1.21:554/stream1") {
			t.Errorf("summary does not show the redacted URL:\n%s", sum)
		}
	}
}

func TestCredentialKeyProblems(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pass")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, tc := range []struct {
		body string
		line int
		want string
	}{
		{"url = \"rtsp://admin:Zq9wXv7Kp@10.0.1.21/s\"\nuser = \"admin\"\npassword = \"Zq9wXv7Kp\"\n", 5, "camera[1].url: carries credentials while user is set"},
		{"url = \"rtsp://10.0.1.21/s\"\npassword = \"Zq9wXv7Kp\"\n", 6, "camera[1].password: needs user"},
		{"url = \"rtsp://10.0.1.21/s\"\nuser = \"admin\"\npassword = \"Zq9wXv7Kp\"\npassword_file = \"x.pass\"\n", 8, "set either password or password_file"},
		{"url = \"rtsp://10.0.1.21/s\"\nuser = \"admin\"\npassword_file = \"missing.pass\"\n", 7, "cannot read " + filepath.Join(dir, "missing.pass")},
		{"url = \"rtsp://10.0.1.21/s\"\nuser = \"admin\"\npassword_file = \"empty.pass\"\n", 7, "is empty"},
	} {
		path := filepath.Join(dir, "rec.toml")
		os.WriteFile(path, []byte(cameraConfig(tc.body)), 0o600)
		_, err := Load(path)
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 {
			t.Errorf("%q: want one problem, got %v", tc.body, err)
			continue
		}
		if ps[0].Line != tc.line || !strings.Contains(ps[0].String(), tc.want) {
			t.Errorf("%q: problem %q, want line %d and %q", tc.body, ps[0], tc.line, tc.want)
		}
		if frag := leaks(err.Error(), "Zq9wXv7Kp"); frag != "" {
			t.Errorf("problem shows %q of the password: %v", frag, err)
		}
	}
}
