package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name      string
		bi        *debug.BuildInfo
		stamps    Stamps
		want      Info
		short     string
		debianVer string
	}{
		{
			name: "no build info", bi: nil,
			want: Info{Version: "(devel)", Commit: Unknown}, short: Unknown, debianVer: "0.0.0~dev",
		},
		{
			name: "tagged release", stamps: Stamps{BuildTime: "2026-12-01T10:00:00Z"},
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-11-30T09:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			want: Info{Version: "v1.2.0", Commit: rev, Go: "go1.26.8",
				CommitTime: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), BuildTime: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
			short: "0123456789ab", debianVer: "1.2.0",
		},
		{
			name: "dirty pseudo-version",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201103000-0123456789ab+dirty"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			want:  Info{Version: "v0.0.0-20261201103000-0123456789ab+dirty", Commit: rev, Go: "go1.26.8", Dirty: true},
			short: "0123456789ab-dirty", debianVer: "0.0.0~git20261201103000.0123456789ab+dirty",
		},
		{
			name: "pseudo-version after a pre-release",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0-rc1.0.20261201103000-0123456789ab"}},
			want: Info{Version: "v1.3.0-rc1.0.20261201103000-0123456789ab", Commit: Unknown, Go: "go1.26.8"}, short: Unknown,
			debianVer: "1.3.0~git20261201103000.0123456789ab",
		},
		{
			name:   "worktree: VCS facts stamped by the packaging tool",
			bi:     &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			stamps: Stamps{BuildTime: "2026-12-01T10:00:00Z", Commit: rev, CommitTime: "2026-11-30T09:00:00Z", Dirty: "true"},
			want: Info{Version: "(devel)", Commit: rev, Go: "go1.26.8", Dirty: true,
				CommitTime: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), BuildTime: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
			short: "0123456789ab-dirty", debianVer: "0.0.0~git20261130090000.0123456789ab+dirty",
		},
		{
			name: "Go's stamp wins over the tool's",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}},
			stamps: Stamps{Commit: "ffffffffffffffffffffffffffffffffffffffff", Dirty: "true"},
			want:   Info{Version: "v1.2.0", Commit: rev, Go: "go1.26.8"}, short: "0123456789ab", debianVer: "1.2.0",
		},
		{
			name: "pre-release", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0-rc1"}},
			want: Info{Version: "v1.2.0-rc1", Commit: Unknown, Go: "go1.26.8"}, short: Unknown, debianVer: "1.2.0~rc1",
		},
		{
			name: "devel with commit (GOFLAGS=-buildvcs=false would drop it)",
			bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev}}},
			want: Info{Version: "(devel)", Commit: rev, Go: "go1.26.8"}, short: "0123456789ab", debianVer: "0.0.0~dev.0123456789ab",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.bi, tc.stamps)
			if tc.want.Go == "" {
				tc.want.Go = got.Go // runtime.Version()
			}
			if got != tc.want {
				t.Fatalf("fromBuildInfo:\n got %+v\nwant %+v", got, tc.want)
			}
			if s := got.ShortCommit(); s != tc.short {
				t.Errorf("ShortCommit = %q, want %q", s, tc.short)
			}
			if v := got.DebianVersion(); v != tc.debianVer {
				t.Errorf("DebianVersion = %q, want %q", v, tc.debianVer)
			}
			if s := got.String(); !strings.HasPrefix(s, "buddyrec "+tc.want.Version+"\n") || !strings.Contains(s, "commit:     "+tc.short+"\n") {
				t.Errorf("String:\n%s", s)
			}
		})
	}
}
