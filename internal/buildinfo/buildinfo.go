// Package buildinfo tells which build of buddyrec is running: the module
// version, the VCS commit and its time, whether the tree had uncommitted
// changes, and when the binary was built. `buddyrec version`, the
// buddyrec_build_info metric and the .deb's version all read it, so a
// technician comparing them sees one answer.
//
// Go stamps the module version and VCS settings into every binary built
// with -buildvcs (the default inside a Git checkout, unless GOFLAGS turns
// it off); the build time is not stamped by Go, so the packaging tool sets
// it with -ldflags "-X github.com/buddyrec/buddyrec/internal/buildinfo.buildTime=...".
package buildinfo

import (
	dbi "debug/buildinfo"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Set at link time by the packaging tool (see Stamps); empty with a plain
// `go build`.
var (
	buildTime  string // RFC 3339
	commit     string // used only when Go stamped no vcs.revision
	commitTime string // RFC 3339, likewise
	dirty      string // "true" or "false", likewise
)

// Stamps are what a build tool records with -ldflags -X: the build time
// always, and the VCS facts where Go cannot stamp them itself (it does not
// recognise a Git worktree, whose .git is a file).
type Stamps struct {
	BuildTime, Commit, CommitTime, Dirty string
}

// LDFlags returns the -X flags that record s in a binary.
func (s Stamps) LDFlags() string {
	const pkg = "github.com/buddyrec/buddyrec/internal/buildinfo."
	var flags []string
	for _, kv := range [][2]string{{"buildTime", s.BuildTime}, {"commit", s.Commit}, {"commitTime", s.CommitTime}, {"dirty", s.Dirty}} {
		if kv[1] != "" {
			flags = append(flags, "-X "+pkg+kv[0]+"="+kv[1])
		}
	}
	return strings.Join(flags, " ")
}

// Unknown stands for a field the binary does not carry.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the module version: a tag (v1.2.0), a pseudo-version
	// derived from the commit, or "(devel)" without VCS stamping.
	Version string
	// Commit is the full VCS revision, or Unknown.
	Commit string
	// CommitTime is the commit's time; zero when unknown.
	CommitTime time.Time
	// BuildTime is when the binary was linked; zero when not stamped.
	BuildTime time.Time
	// Dirty is true when the working tree had uncommitted changes: the
	// commit alone does not reproduce this binary.
	Dirty bool
	// Go is the toolchain version (go1.26.8).
	Go string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, Stamps{BuildTime: buildTime, Commit: commit, CommitTime: commitTime, Dirty: dirty})
}

// ReadFile returns the build information of the Go binary at path linked
// with stamps, as that binary's Read reports it: the packaging tool
// versions a .deb after the binary it holds.
func ReadFile(path string, stamps Stamps) (Info, error) {
	bi, err := dbi.ReadFile(path)
	if err != nil {
		return Info{}, fmt.Errorf("read build info of %s: %w", path, err)
	}
	return fromBuildInfo(bi, stamps), nil
}

func fromBuildInfo(bi *debug.BuildInfo, st Stamps) Info {
	in := Info{Version: "(devel)", Commit: Unknown, Go: runtime.Version()}
	if t, err := time.Parse(time.RFC3339, st.BuildTime); err == nil {
		in.BuildTime = t.UTC()
	}
	if st.Commit != "" {
		in.Commit = st.Commit
		in.Dirty = st.Dirty == "true"
		if t, err := time.Parse(time.RFC3339, st.CommitTime); err == nil {
			in.CommitTime = t.UTC()
		}
	}
	if bi == nil {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		in.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				in.CommitTime = t.UTC()
			}
		case "vcs.modified":
			in.Dirty = s.Value == "true"
		}
	}
	// Go marks a pseudo-version of a dirty tree with "+dirty"; say it once.
	if strings.HasSuffix(in.Version, "+dirty") {
		in.Dirty = true
	}
	return in
}

// ShortCommit is the first 12 hex digits of the commit, with "-dirty"
// appended for a modified tree.
func (in Info) ShortCommit() string {
	c := in.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if in.Dirty && c != Unknown {
		c += "-dirty"
	}
	return c
}

// String is the multi-line text `buddyrec version` prints.
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "buddyrec %s\n", in.Version)
	fmt.Fprintf(&b, "commit:     %s\n", in.ShortCommit())
	fmt.Fprintf(&b, "commit at:  %s\n", timeOrUnknown(in.CommitTime))
	fmt.Fprintf(&b, "built at:   %s\n", timeOrUnknown(in.BuildTime))
	fmt.Fprintf(&b, "go:         %s %s/%s\n", in.Go, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func timeOrUnknown(t time.Time) string {
	if t.IsZero() {
		return Unknown
	}
	return t.Format(time.RFC3339)
}

// DebianVersion turns the module version into a Debian package version:
// v1.2.3 → 1.2.3; a pseudo-version v0.0.0-20261201103000-abcdef123456
// (+dirty) → 0.0.0~git20261201103000.abcdef123456(+dirty), which sorts
// before the 0.0.0 release as Debian expects of a snapshot. Without any
// version it falls back to 0.0.0~dev.
func (in Info) DebianVersion() string {
	v := strings.TrimPrefix(in.Version, "v")
	if v == "" || v == "(devel)" {
		if in.Commit == Unknown {
			return "0.0.0~dev"
		}
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		// Like Go's pseudo-versions: the commit time orders snapshots.
		v = "0.0.0~dev." + c
		if !in.CommitTime.IsZero() {
			v = "0.0.0~git" + in.CommitTime.Format("20060102150405") + "." + c
		}
		if in.Dirty {
			v += "+dirty"
		}
		return v
	}
	dirty := strings.HasSuffix(v, "+dirty")
	v = strings.TrimSuffix(v, "+dirty")
	// Pseudo-versions end in -<14-digit time>-<12 hex>; the time may follow
	// a "0." or ".0." (vX.Y.Z-pre.0.time-hash) too.
	parts := strings.Split(v, "-")
	if n := len(parts); n >= 3 && len(parts[n-1]) == 12 {
		ts := parts[n-2]
		if i := strings.LastIndexByte(ts, '.'); i >= 0 {
			ts = ts[i+1:]
		}
		if len(ts) == 14 {
			v = parts[0] + "~git" + ts + "." + parts[n-1]
		}
	}
	// Debian allows [A-Za-z0-9.+~-]; a pre-release's hyphen becomes ~ so
	// v1.2.0-rc1 sorts before 1.2.0.
	v = strings.ReplaceAll(v, "-", "~")
	if dirty {
		v += "+dirty"
	}
	return v
}
