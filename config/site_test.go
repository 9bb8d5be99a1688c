package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copySites copies testdata/sites (configs refer to ../gossip.key and
// friends) so a test can break one file of a site.
func copySites(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := "../testdata/sites"
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s lacks %q", path, old)
	}
	os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600)
}

func loadSite(t *testing.T, dir string) []*Config {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	var cfgs []*Config
	for _, p := range paths {
		c, err := Load(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cfgs = append(cfgs, c)
	}
	return cfgs
}

func TestCheckSite(t *testing.T) {
	otherKey := base64.StdEncoding.EncodeToString([]byte("another-site-key-of-32-bytes!!!!"))
	tests := []struct {
		name     string
		site     string
		breakIt  func(t *testing.T, dir string)
		problems []string // substrings, one per expected problem, in order
		warnings []string
		failures []string // "server: summary"
	}{
		{name: "mirrored", site: "mirrored", failures: []string{"rec-a: 3 → rec-b"}},
		{name: "n-plus-2", site: "n-plus-2", failures: []string{"rec-a: 2 → rec-b", "rec-b: 1 → rec-c", "rec-c: 1 → rec-a"}},
		{name: "spread cameras", site: "spread-cameras",
			failures: []string{`rec-a: 1 → rec-b, 2 non-critical stay off (cameras = "critical")`, `rec-b: 2 → rec-a, 1 non-critical stay off (cameras = "critical")`}},
		{name: "spread servers", site: "spread-servers", failures: []string{"rec-a: 4 → rec-s", "rec-b: 4 → rec-s"}},
		{
			name: "two servers called rec-a", site: "spread-servers",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "spread-servers", "rec-b.toml"), `name     = "rec-b"`, `name     = "rec-a"`)
			},
			problems: []string{`spread-servers/rec-b.toml:2: name: "rec-a" is also the name of /`},
			failures: []string{"rec-a: 4 → rec-s"},
		},
		{
			name: "unknown buddy", site: "n-plus-2",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "n-plus-2", "rec-a.toml"), `buddies = ["rec-b", "rec-c"]`, `buddies = ["rec-b", "rec-x"]`)
			},
			problems: []string{`rec-a.toml:23: failover.buddies: buddy "rec-x" is none of the site's servers (rec-a, rec-b, rec-c)`},
			failures: []string{"rec-a: 2 → rec-b", "rec-b: 1 → rec-c", "rec-c: 1 → rec-a"},
		},
		{
			name: "another gossip key", site: "n-plus-2",
			breakIt: func(t *testing.T, d string) {
				os.WriteFile(filepath.Join(d, "other.key"), []byte(otherKey+"\n"), 0o600)
				edit(t, filepath.Join(d, "n-plus-2", "rec-c.toml"), `key_file       = "../gossip.key"`, `key_file       = "../other.key"`)
			},
			problems: []string{"site: servers gossip with different keys, so they cannot hear each other: rec-"},
			failures: []string{"rec-a: 2 → rec-b", "rec-b: 1 → rec-c", "rec-c: 1 → rec-a"},
		},
		{
			name: "one camera recorded twice (other credentials, default port, trailing slash)", site: "n-plus-2",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "n-plus-2", "rec-c.toml"), `rtsp://viewer:change-me@10.0.1.40/stream1`, `rtsp://admin:s3cr3t-pw@10.0.1.20:554/stream1/`)
			},
			problems: []string{`rec-c.toml:34: camera[1].url: rec-c/gate records 10.0.1.20:554/stream1, which rec-a/lobby (`},
			failures: []string{"rec-a: 2 → rec-b", "rec-b: 1 → rec-c", "rec-c: 1 → rec-a"},
		},
		{
			name: "NVR channels differ by query: not a duplicate", site: "n-plus-2",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "n-plus-2", "rec-a.toml"), `rtsp://10.0.1.21/stream1`, `rtsp://10.0.1.99/cam/realmonitor?channel=1&token=tok-secret`)
				edit(t, filepath.Join(d, "n-plus-2", "rec-b.toml"), `@10.0.1.30/stream1`, `@10.0.1.99/cam/realmonitor?channel=2&token=tok-secret`)
			},
			failures: []string{"rec-a: 2 → rec-b", "rec-b: 1 → rec-c", "rec-c: 1 → rec-a"},
		},
		{
			name: "standby too small for one failure", site: "spread-servers",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "spread-servers", "rec-s.toml"), "cameras      = 5", "cameras      = 3")
			},
			warnings: []string{"rec-a.toml:27: if rec-a fails: 3 → rec-s, 1 not recorded — rec-a/", "rec-b.toml:27: if rec-b fails: 3 → rec-s, 1 not recorded — rec-b/"},
			failures: []string{"rec-a: 3 → rec-s, 1 not recorded", "rec-b: 3 → rec-s, 1 not recorded"},
		},
		{
			name: "no buddies", site: "mirrored",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "mirrored", "rec-a.toml"), `buddies = ["rec-b"]`, `buddies = []`)
			},
			warnings: []string{"if rec-a fails: 3 not recorded — rec-a/dock, rec-a/gate, rec-a/lobby not recorded because it has no buddies"},
			failures: []string{"rec-a: 3 not recorded"},
		},
		{
			name: "timing differs", site: "mirrored",
			breakIt: func(t *testing.T, d string) {
				edit(t, filepath.Join(d, "mirrored", "rec-b.toml"), `failover_after = "800ms"`, `failover_after = "3s"`)
			},
			problems: []string{"site: [cluster] timing must be the same on every server: rec-a uses keepalive 200ms, failover_after 800ms; rec-b uses keepalive 200ms, failover_after 3s"},
			failures: []string{"rec-a: 3 → rec-b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := copySites(t)
			dir := filepath.Join(root, tc.site)
			if tc.breakIt != nil {
				tc.breakIt(t, root) // edits name files from the copied root
			}
			r := CheckSite(loadSite(t, dir))
			var all strings.Builder
			check := func(kind string, got Problems, want []string) {
				if len(got) != len(want) {
					t.Errorf("%d %s, want %d:\n%v", len(got), kind, len(want), got)
					return
				}
				for i, w := range want {
					if !strings.Contains(got[i].String(), w) {
						t.Errorf("%s[%d] = %q, want it to contain %q", kind, i, got[i], w)
					}
				}
			}
			check("problems", r.Problems, tc.problems)
			check("warnings", r.Warnings, tc.warnings)
			var fs []string
			for _, f := range r.Failures {
				fs = append(fs, f.Server+": "+f.String())
			}
			if strings.Join(fs, "\n") != strings.Join(tc.failures, "\n") {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(fs, "\n"), strings.Join(tc.failures, "\n"))
			}
			for _, p := range append(r.Problems, r.Warnings...) {
				all.WriteString(p.String() + "\n")
			}
			for _, secret := range []string{"change-me", "s3cr3t-pw", "tok-secret", otherKey, "admin"} {
				if strings.Contains(all.String(), secret) {
					t.Errorf("report shows a secret %q:\n%s", secret, all.String())
				}
			}
			if len(tc.problems) == 0 && !strings.HasPrefix(r.KeyFingerprint, "sha256:") {
				t.Errorf("key fingerprint %q", r.KeyFingerprint)
			}
		})
	}
}

func TestKeyFingerprintNeverShowsTheKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	fp := KeyFingerprint(key)
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+12 || strings.Contains(fp, "0123456789abcdef") {
		t.Errorf("fingerprint %q", fp)
	}
	if fp == KeyFingerprint([]byte("0123456789abcdef0123456789abcdeg")) {
		t.Error("two keys, one fingerprint")
	}
}

func TestCameraTarget(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"rtsp://u:p@10.0.0.1/s1", "rtsp://10.0.0.1:554/s1/", true},
		{"rtsp://CAM.example/s1", "rtsp://cam.example/s1", true},
		{"rtsp://10.0.0.1/s1", "rtsp://10.0.0.1/s2", false},
		{"rtsp://10.0.0.1/s1", "rtsp://10.0.0.1:8554/s1", false},
		{"rtsp://10.0.0.1/a?channel=1", "rtsp://10.0.0.1/a?channel=2", false},
		{"rtsp://10.0.0.1/a?channel=1", "rtsp://x:y@10.0.0.1/a?channel=1", true},
	}
	for _, tc := range tests {
		ka, _, _ := CameraTarget(tc.a)
		kb, _, _ := CameraTarget(tc.b)
		if (ka == kb) != tc.same {
			t.Errorf("%s vs %s: same=%v, want %v", tc.a, tc.b, ka == kb, tc.same)
		}
	}
	if _, shown, _ := CameraTarget("rtsp://u:pw@h/p?token=abc"); strings.Contains(shown, "pw") || strings.Contains(shown, "abc") {
		t.Errorf("shown %q", shown)
	}
}
