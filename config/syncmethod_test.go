package config

import (
	"strings"
	"testing"
)

func TestSyncMethod(t *testing.T) {
	checkStorageKey(t, []storageKeyCase{
		{"", "auto", ""},
		{"[storage]\nsync_method = \"auto\"\n", "auto", ""},
		{"[storage]\nsync_method = \"io_uring\"\n", "io_uring", ""},
		{"[storage]\nsync_method = \"fdatasync\"\n", "fdatasync", ""},
		{"[storage]\nsync_method = \"fsync\"\n", "", `storage.sync_method: must be "auto", "io_uring" or "fdatasync", not "fsync"`},
		{"[storage]\nsync_method = true\n", "", "storage.sync_method: must be a string"},
	}, func(c *Config) string { return c.Storage.SyncMethod })
}

// A sync method is chosen when the stores open: changing it needs a
// restart, and a reload that tries is refused whole.
func TestSyncMethodNeedsRestart(t *testing.T) {
	old, err := Load(writeConfig(t, minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	new, err := Load(writeConfig(t, minimalConfig+"[storage]\nsync_method = \"fdatasync\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(old, new)
	var found bool
	for _, c := range d.Changes {
		if c.Key == "storage.sync_method" {
			found = true
			if !c.Restart || c.Line != 6 {
				t.Errorf("change %+v: want restart-only at line 6", c)
			}
		}
	}
	if !found {
		t.Errorf("no change for storage.sync_method in %+v", d.Changes)
	}
}

// `buddyrec check` shows the sync method in force.
func TestSyncMethodInSummary(t *testing.T) {
	for storage, want := range map[string]string{
		"": ", sync auto\n",
		"[storage]\nsync_method = \"fdatasync\"\n": ", sync fdatasync\n",
	} {
		c, err := Load(writeConfig(t, minimalConfig+storage))
		if err != nil {
			t.Fatal(err)
		}
		if sum := c.Summary(); !strings.Contains(sum, want) {
			t.Errorf("%q: summary %q, want it to contain %q", storage, sum, want)
		}
	}
}
