package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// reloadBase is a server's config before a reload; each case edits it.
const reloadBase = `name     = "rec-a"
data_dir = "/tmp/rec-a"

[listen]
gossip = "127.0.0.1:7946"
http   = "127.0.0.1:8080"

[cluster]
key_file       = "gossip.key"
failback_after = "45s"

[capacity]
cameras = 8

[failover]
buddies = ["rec-b"]

[[camera]]
name = "lobby"
url  = "rtsp://admin:s3cr3t-lobby@10.0.1.21/stream1"

[[camera]]
name     = "door"
url      = "rtsp://10.0.1.22/stream1"
critical = true
`

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		// keys changed, in order; restart lists those needing a restart.
		keys, restart             []string
		added, removed, restarted []string
		wantLine                  map[string]int // key → line in the new file
		summary                   string         // substring of Summary
		newKey                    string         // new content of gossip.key, if any
	}{
		{name: "same file", edit: func(s string) string { return s }},
		{name: "comment and order only", edit: func(s string) string { return "# edited\n" + s }},
		{
			name: "camera added",
			edit: func(s string) string {
				return s + "\n[[camera]]\nname = \"yard\"\nurl = \"rtsp://10.0.1.23/s\"\n"
			},
			keys: []string{"camera.yard"}, added: []string{"yard"},
			wantLine: map[string]int{"camera.yard": 27},
			summary:  "cameras added: yard",
		},
		{
			name: "camera removed",
			edit: func(s string) string {
				return strings.Replace(s, "[[camera]]\nname     = \"door\"\nurl      = \"rtsp://10.0.1.22/stream1\"\ncritical = true\n", "", 1)
			},
			keys: []string{"camera.door"}, removed: []string{"door"},
			summary: "cameras removed: door",
		},
		{
			name: "camera password changed: restarts, password never shown",
			edit: func(s string) string { return strings.Replace(s, "s3cr3t-lobby", "n3w-s3cr3t", 1) },
			keys: []string{"camera.lobby.url"}, restarted: []string{"lobby"},
			wantLine: map[string]int{"camera.lobby.url": 20},
			summary:  "cameras restarted: lobby",
		},
		{
			name: "camera host changed",
			edit: func(s string) string { return strings.Replace(s, "10.0.1.22", "10.0.1.99", 1) },
			keys: []string{"camera.door.url"}, restarted: []string{"door"},
		},
		{
			name: "camera transport changed",
			edit: func(s string) string {
				return strings.Replace(s, "critical = true", "critical = true\ntransport = \"udp\"", 1)
			},
			keys: []string{"camera.door.transport"}, restarted: []string{"door"},
		},
		{
			name:     "camera critical changed: planner only, pipeline kept",
			edit:     func(s string) string { return strings.Replace(s, "critical = true", "critical = false", 1) },
			keys:     []string{"camera.door.critical"},
			wantLine: map[string]int{"camera.door.critical": 25},
			summary:  "changed: camera.door.critical",
		},
		{
			name: "buddies, capacity and failback apply live",
			edit: func(s string) string {
				s = strings.Replace(s, `buddies = ["rec-b"]`, `buddies = ["rec-b", "rec-c"]`, 1)
				s = strings.Replace(s, "cameras = 8", "cameras = 4", 1)
				return strings.Replace(s, `failback_after = "45s"`, `failback_after = "1m"`, 1)
			},
			keys:     []string{"cluster.failback_after", "capacity.cameras", "failover.buddies"},
			wantLine: map[string]int{"failover.buddies": 16, "capacity.cameras": 13},
		},
		{
			name:     "listen address needs a restart",
			edit:     func(s string) string { return strings.Replace(s, "127.0.0.1:8080", "127.0.0.1:8081", 1) },
			keys:     []string{"listen.http"},
			restart:  []string{"listen.http"},
			wantLine: map[string]int{"listen.http": 6},
		},
		{
			name: "name and data_dir need a restart",
			edit: func(s string) string {
				return strings.Replace(strings.Replace(s, `"rec-a"`, `"rec-z"`, 1), "/tmp/rec-a", "/tmp/rec-z", 1)
			},
			keys:    []string{"name", "data_dir"},
			restart: []string{"name", "data_dir"},
		},
		{
			name: "gossip key file changed",
			edit: func(s string) string { return strings.Replace(s, "gossip.key", "other.key", 1) },
			keys: []string{"cluster.key_file"}, restart: []string{"cluster.key_file"},
		},
		{
			name:   "gossip key content changed under the same file",
			edit:   func(s string) string { return s },
			newKey: "ZmVkY2JhOTg3NjU0MzIxMA==\n",
			keys:   []string{"cluster.key_file"}, restart: []string{"cluster.key_file"},
		},
		{
			name:    "timing and storage need a restart",
			edit:    func(s string) string { return s + "\n[storage]\nsegment = \"10s\"\n" },
			keys:    []string{"storage.segment"},
			restart: []string{"storage.segment"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oldPath := writeConfig(t, reloadBase)
			must(t, os.WriteFile(filepath.Join(filepath.Dir(oldPath), "other.key"), []byte("ZmVkY2JhOTg3NjU0MzIxMA==\n"), 0o600))
			old, err := Load(oldPath)
			if err != nil {
				t.Fatal(err)
			}
			must(t, os.WriteFile(oldPath, []byte(tc.edit(reloadBase)), 0o600))
			if tc.newKey != "" {
				must(t, os.WriteFile(filepath.Join(filepath.Dir(oldPath), "gossip.key"), []byte(tc.newKey), 0o600))
			}
			nw, err := Load(oldPath)
			if err != nil {
				t.Fatal(err)
			}
			d := Compare(old, nw)
			var keys, restart []string
			for _, c := range d.Changes {
				keys = append(keys, c.Key)
				if c.Restart {
					restart = append(restart, c.Key)
				}
				for _, secret := range []string{"s3cr3t-lobby", "n3w-s3cr3t", "MDEyMzQ1", "ZmVkY2Jh"} {
					if strings.Contains(c.Msg, secret) {
						t.Errorf("change %s shows a secret: %s", c.Key, c.Msg)
					}
				}
				if want, ok := tc.wantLine[c.Key]; ok && c.Line != want {
					t.Errorf("change %s at line %d, want %d", c.Key, c.Line, want)
				}
			}
			check := func(what string, got, want []string) {
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("keys", keys, tc.keys)
			check("restart keys", restart, tc.restart)
			check("added", d.Added, tc.added)
			check("removed", d.Removed, tc.removed)
			check("restarted", d.Restarted, tc.restarted)
			if d.Empty() != (len(tc.keys) == 0) {
				t.Errorf("Empty() = %t with changes %q", d.Empty(), keys)
			}
			if ps := d.NeedsRestart(); len(ps) != len(tc.restart) {
				t.Errorf("NeedsRestart() = %v, want %d problems", ps, len(tc.restart))
			} else {
				for _, p := range ps {
					if p.File != oldPath || !strings.Contains(p.String(), "restart") {
						t.Errorf("problem %q: want the file and how to apply it", p)
					}
				}
			}
			if !strings.Contains(d.Summary(), tc.summary) {
				t.Errorf("Summary() = %q, want it to contain %q", d.Summary(), tc.summary)
			}
			if strings.Contains(d.Summary(), "s3cr3t") {
				t.Errorf("Summary() shows a password: %q", d.Summary())
			}
		})
	}
}

// TestEveryKeyClassifiedForReload: every key the loader knows is either
// applied by a reload or named as needing a restart, so a key added later
// cannot be silently ignored by a reload.
func TestEveryKeyClassifiedForReload(t *testing.T) {
	want := map[string]bool{}
	for table, names := range keys {
		switch table {
		case "camera", "psim", "aspect": // compared as whole tables: they all reload
			continue
		}
		for _, k := range names {
			if _, isTable := keys[k]; table == "" && isTable {
				continue
			}
			if table != "" {
				k = table + "." + k
			}
			want[k] = true
			if _, ok := needsRestart[k]; !ok {
				t.Errorf("key %s is not classified in needsRestart", k)
			}
		}
	}
	for k := range needsRestart {
		if !want[k] {
			t.Errorf("needsRestart names %s, which the loader does not know", k)
		}
	}
}
