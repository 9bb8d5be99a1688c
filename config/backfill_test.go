package config

import "testing"

func TestBackfillMbps(t *testing.T) {
	checkStorageKey(t, []storageKeyCase{
		{"", "auto", ""},
		{"[storage]\nbackfill_mbps = \"auto\"\n", "auto", ""},
		{"[storage]\nbackfill_mbps = 50\n", "50", ""},
		{"[storage]\nbackfill_mbps = 0.5\n", "0.5", ""},
		{"[storage]\nbackfill_mbps = 0\n", "0", ""},
		{"[storage]\nbackfill_mbps = -1\n", "", "storage.backfill_mbps: must be a non-negative number"},
		{"[storage]\nbackfill_mbps = \"fast\"\n", "", `storage.backfill_mbps: must be a number of Mbit/s or "auto", not the string "fast"`},
		{"[storage]\nbackfill_mbps = true\n", "", "storage.backfill_mbps: must be a number"},
	}, func(c *Config) string { return c.Storage.BackfillSetting() })
}
