package config

import (
	"strings"
	"testing"
)

func TestBackfillMbps(t *testing.T) {
	base := "name = \"rec-a\"\ndata_dir = \"/tmp/x\"\n[listen]\nhttp = \"127.0.0.1:8080\"\n"
	for _, tc := range []struct {
		storage string
		want    string // Storage.BackfillSetting
		err     string
	}{
		{"", "auto", ""},
		{"[storage]\nbackfill_mbps = \"auto\"\n", "auto", ""},
		{"[storage]\nbackfill_mbps = 50\n", "50", ""},
		{"[storage]\nbackfill_mbps = 0.5\n", "0.5", ""},
		{"[storage]\nbackfill_mbps = 0\n", "0", ""},
		{"[storage]\nbackfill_mbps = -1\n", "", "storage.backfill_mbps: must be a non-negative number"},
		{"[storage]\nbackfill_mbps = \"fast\"\n", "", `storage.backfill_mbps: must be a number of Mbit/s or "auto", not the string "fast"`},
		{"[storage]\nbackfill_mbps = true\n", "", "storage.backfill_mbps: must be a number"},
	} {
		c, err := Load(writeConfig(t, base+tc.storage))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), ":6") {
				t.Errorf("%q: error %v, want %q at line 6", tc.storage, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.storage, err)
		}
		if got := c.Storage.BackfillSetting(); got != tc.want {
			t.Errorf("%q: backfill_mbps %v, want %v", tc.storage, got, tc.want)
		}
	}
}
