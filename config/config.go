// Package config loads and validates one buddyrec server's TOML file.
//
// Load reports every problem at once, each with file:line, so an installer
// fixes a file in one pass; secrets (camera passwords, key and secret file
// contents) never appear in a problem or in the summary.
package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/camera"
)

// Config is one server's configuration. Field names follow the TOML keys.
type Config struct {
	// File is the path the config was loaded from (for messages).
	File string

	Name     string // unique in the site; also the gossip node name
	DataDir  string // segments, index.db and cluster state live here
	Listen   Listen
	Cluster  Cluster
	Capacity Capacity
	Failover Failover
	Storage  Storage
	Recorder Recorder
	Events   Events
	HTTP     HTTP
	Cameras  []Camera
	PSIM     []PSIM
	Aspects  []Aspect

	// GossipKey is the decoded content of Cluster.KeyFile (nil if none).
	GossipKey []byte
}

// Listen holds the addresses this server binds.
type Listen struct {
	Gossip string // empty: standalone, no cluster
	HTTP   string
	RTSP   string // live re-stream for viewers; empty disables it
}

// Cluster configures membership and failover timing.
type Cluster struct {
	Join          []string
	KeyFile       string
	Keepalive     time.Duration
	FailoverAfter time.Duration
	Failback      bool
	FailbackAfter time.Duration
	Insecure      bool
	// ForgetAfter is how long a server may be gone (dead or left) before
	// this one forgets it: its record and secrets are pruned and its
	// cameras no longer adopted. Default 30d.
	ForgetAfter time.Duration
	// DrainTimeout bounds the drain a clean stop (SIGTERM, restart from
	// the page) does first: the cameras are handed to buddies
	// make-before-break, then the server leaves. Default 15s; 0 stops at
	// once.
	DrainTimeout time.Duration
}

// Capacity bounds what this server records, own plus adopted cameras, and
// how many live viewers it serves. Zero means unlimited.
type Capacity struct {
	Cameras     int
	BitrateMbps float64
	Viewers     int
}

// Failover says who takes over this server's cameras, in priority order.
type Failover struct {
	Buddies []string
	// Cameras is "all" or "critical" (spread cameras: only critical ones move).
	Cameras string
	// Standby is how the buddy that would adopt each critical camera
	// prepares for it while this server lives: StandbyCold, StandbyHot or
	// StandbyMirror (see control/standby.go).
	Standby string
}

// Standby modes of [failover] standby.
const (
	// StandbyCold: the buddy connects only on takeover (detection + a
	// keyframe wait + the unflushed part are lost).
	StandbyCold = "cold"
	// StandbyHot: the buddy keeps its own session open and a ring of the
	// last samples in memory, written on takeover: no gap.
	StandbyHot = "hot"
	// StandbyMirror: the buddy records the camera to its own disk all the
	// time: no gap, and the archive survives the home.
	StandbyMirror = "mirror"
)

// Storage configures segment files and retention.
type Storage struct {
	Segment   time.Duration
	Part      time.Duration
	Retention time.Duration // 0 keeps footage until min_free forces deletion
	// MinFree is either a fraction of the disk (MinFreeFraction) or bytes.
	MinFreeFraction float64
	MinFreeBytes    int64
	// BackfillMbps limits copying back what peers recorded of this
	// server's cameras (archive consolidation); 0 is unlimited.
	BackfillMbps float64
	// BackfillAuto (backfill_mbps = "auto", the default) limits the copy
	// from each peer to half the speed of the link that reaches it
	// (backfill.AutoMbps): the limit that fits the link without a number
	// the installer must know; BackfillMbps is then unused.
	BackfillAuto bool
	// SyncMethod is how sync rounds make segment files durable
	// (storage.SyncMethod): "auto" (io_uring where the kernel allows it,
	// else fdatasync), "io_uring" (the server refuses to start where the
	// kernel refuses it) or "fdatasync".
	SyncMethod string
}

// BackfillSetting is backfill_mbps as written: "auto" or the number.
func (s Storage) BackfillSetting() string {
	if s.BackfillAuto {
		return "auto"
	}
	return strconv.FormatFloat(s.BackfillMbps, 'g', -1, 64)
}

// Recorder configures how cameras are recorded: in worker processes of
// the same binary, so that one camera's crash, hang or runaway memory
// costs that camera and not the server (see package worker).
type Recorder struct {
	// CamerasPerWorker groups cameras into worker processes of this many
	// each; 0 records every camera in the server's own process.
	CamerasPerWorker int
	// WorkerMemory is the resident memory above which a worker is
	// replaced (make before break) with an alarm; 0 picks a default that
	// fits CamerasPerWorker.
	WorkerMemory int64
}

// Events configures the event log.
type Events struct {
	Retention time.Duration
}

// HTTP configures access control for the page and API.
type HTTP struct {
	UsersFile string
	TokenFile string
	CertFile  string
	KeyFile   string
	// CAFile holds extra PEM certificates this server trusts, on top of the
	// system store, when it calls its peers over HTTPS: sites usually sign
	// their servers' certificates with their own CA. Empty: system store only.
	CAFile string
}

// Camera is one camera this server owns.
type Camera struct {
	Name string
	// URL is the stream's address with its credentials: those written in
	// it, or the user and password keys percent-encoded into it. Print it
	// with RedactedURL.
	URL string
	// User is the user key; PasswordFile the password_file key (resolved).
	// The password itself lives only in URL.
	User, PasswordFile string
	Critical           bool
	Transport          string // tcp (default), udp or auto
	BitrateMbps        float64
	Line               int // where the [[camera]] table starts
}

// ID is the site-wide camera id "home/name" (camera.ID in string form).
func (c Camera) ID(home string) string { return camera.New(home, c.Name).String() }

// RedactedURL is the camera URL with any password replaced by "xxxxx".
func (c Camera) RedactedURL() string { return RedactURL(c.URL) }

// PSIM is one webhook target.
type PSIM struct {
	URL        string
	SecretFile string
	Events     []string
	// Secret is the content of SecretFile; never print it.
	Secret string
	Line   int
}

// Aspect is a non-camera thing that fails over with the server.
type Aspect struct {
	Kind   string
	Name   string
	Params map[string]string // kind-specific keys, as text
	Line   int
}

// RedactURL hides a password in a URL and drops query strings, which often
// carry tokens; malformed input is shown only by what cannot be a
// password (see DisplayURL).
func RedactURL(raw string) string { return DisplayURL(raw) }

// Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Line int // 0 when the problem has no single place
	Key  string
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Problems is every problem found in one file; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sorted() Problems {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}
