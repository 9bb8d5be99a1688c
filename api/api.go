// Package api holds the JSON shapes of buddyrec's HTTP API (/api/v1/...),
// shared by the server that answers, the status page that renders them and
// peers that fetch them from each other.
package api

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
)

// CameraInfo is one camera in GET /api/v1/cameras.
type CameraInfo struct {
	ID             string    `json:"id"` // "home/name"
	Home           string    `json:"home"`
	RecordedBy     string    `json:"recorded_by"`
	State          string    `json:"state"` // a recorder.State: connecting, recording, offline
	Since          time.Time `json:"since"`
	Reason         string    `json:"reason,omitempty"` // a recorder.Reason while offline: auth, unreachable, stall, ...
	Error          string    `json:"error,omitempty"`  // redacted: never a password
	Critical       bool      `json:"critical,omitempty"`
	Codec          string    `json:"codec,omitempty"`
	BitrateBps     float64   `json:"bitrate_bps"`
	LastKeyframe   time.Time `json:"last_keyframe,omitzero"`
	FramesReceived uint64    `json:"frames_received"`
	FramesDropped  uint64    `json:"frames_dropped"`
	BytesReceived  uint64    `json:"bytes_received"`
	Reconnects     uint64    `json:"reconnects"`
	// NextAttempt is when an offline camera is next tried; it is tried
	// sooner if the probe of its port finds it back.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LiveURL     string    `json:"live_url,omitempty"` // rtsp://host:port/home/name, no credentials
	// Standby is set on a standby session (Cameras.Standby): "hot" or
	// "mirror". HeldBytes and HeldSeconds are what a hot one's ring holds;
	// NeedSeconds is the span it must hold (failover_after + keepalive +
	// 2 parts, plus 2 GOPs); ResidentBytes the memory its payloads
	// occupy. Taken at the ring's last keyframe, when it is smallest.
	Standby       string  `json:"standby,omitempty"`
	HeldBytes     int64   `json:"held_bytes,omitempty"`
	HeldSeconds   float64 `json:"held_seconds,omitempty"`
	NeedSeconds   float64 `json:"need_seconds,omitempty"`
	ResidentBytes int64   `json:"resident_bytes,omitempty"`
}

// AspectInfo is one aspect a server holds (its own or adopted).
type AspectInfo struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Home   string `json:"home"`
	HeldBy string `json:"held_by"`
}

// Footage is what one server's storage holds of one camera.
type Footage struct {
	Bytes uint64 `json:"bytes"`
	// Oldest is the start of the oldest footage kept.
	Oldest time.Time `json:"oldest"`
}

// Cameras is the body of GET /api/v1/cameras.
type Cameras struct {
	Server  string       `json:"server"`
	Cameras []CameraInfo `json:"cameras"`
	Aspects []AspectInfo `json:"aspects"`
	// Load is this server's resource use measured now: exact, where the
	// gossiped copy in /api/v1/cluster is rounded and up to 10 s old.
	Load *Load `json:"load,omitempty"`
	// Footage is, per camera id, what this server's storage holds: own,
	// adopted and formerly adopted cameras alike. It may be up to a minute
	// old (the index is walked in the background).
	Footage map[string]Footage `json:"footage,omitempty"`
	// Standby are the standby sessions this server holds for cameras
	// their homes record ([failover] standby): not among Cameras, because
	// this server is not the camera's recorder until it takes it over (a
	// mirror writes its own copy meanwhile).
	Standby []CameraInfo `json:"standby,omitempty"`
	// Backfill lists, per own camera and peer, footage this server is
	// copying back from peers (see GET /api/v1/backfill).
	Backfill []BackfillCamera `json:"backfill,omitempty"`
}

// Span is contiguous footage in GET /api/v1/recordings.
type Span struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	RecordedBy string    `json:"recorded_by"`
	// HeldBy lists the live servers holding this footage (the recorder,
	// and any server holding a copy); empty in a server's local timeline,
	// where it is that server.
	HeldBy []string `json:"held_by,omitempty"`
}

// Unreachable names a server that holds footage of a camera which no live
// server can give now: a dead home's own archive. The status page says
// "before 08:25:40 on rec-a, unreachable".
type Unreachable struct {
	Server string `json:"server"`
	// Before is when the server went down: it holds footage recorded
	// before then. Nil when this server has not seen it go down (it was
	// already down when this server started).
	Before *time.Time `json:"before,omitempty"`
	// Reason is "server down" or why a live server did not answer.
	Reason string `json:"reason"`
}

// Recordings is the body of GET /api/v1/recordings: the footage of one
// camera anywhere in the site.
type Recordings struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Spans is what live servers hold, merged across servers.
	Spans []Span `json:"spans"`
	// Gaps are the stretches of [From, To) no live server holds.
	Gaps []Gap `json:"gaps"`
	// Unreachable says where footage may be that no live server gave.
	Unreachable []Unreachable `json:"unreachable,omitempty"`
}

// Gap is a stretch with no footage available: in recordings, an export's
// X-Buddyrec-Gaps header, its plan and its manifest.
type Gap struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Reason says why, when it is not simply "nothing recorded", e.g. a
	// codec parameter change that ends an export early.
	Reason string `json:"reason,omitempty"`
}

// Capacity is what a server may record, own + adopted; 0 is unlimited.
type Capacity struct {
	Cameras     int     `json:"cameras"`
	BitrateMbps float64 `json:"bitrate_mbps"`
	Viewers     int     `json:"viewers"`
}

// Load is a server's recent resource use, as it gossips it.
type Load struct {
	CPU         float64 `json:"cpu"` // fraction of all cores, 0..1
	MemoryBytes uint64  `json:"memory_bytes"`
	DiskUsed    uint64  `json:"disk_used"`
	DiskTotal   uint64  `json:"disk_total"`
	// RecordingBytes is what buddyrec itself keeps on that filesystem:
	// segment files and their index. Zero in gossiped records; servers
	// give it in their own /api/v1/cameras answer.
	RecordingBytes uint64 `json:"recording_bytes,omitempty"`
	Viewers        int    `json:"viewers"`
}

// Why a camera of the site is recorded by nobody: the planner's reasons
// (failover.Reason*), carried in HomeCamera.Unrecorded.
const (
	// UnrecordedCapacity: a server that may take the camera is alive, but
	// none has room for it.
	UnrecordedCapacity = "capacity"
	// UnrecordedNoCandidate: its home and every buddy that may take it
	// (all of them, or only the home for a non-critical camera of a
	// "critical" home) are down.
	UnrecordedNoCandidate = "no_candidate_alive"
	// UnrecordedInvalid: the site's records disagree about the camera (a
	// duplicate name or id, a nonsense bitrate).
	UnrecordedInvalid = "invalid"
)

// HomeCamera is one camera of a server's own inventory, as the site's plan
// places it. Every server knows every inventory from the replicated
// records, including those of servers that are down, so the status page
// can list cameras nobody records.
type HomeCamera struct {
	ID       string `json:"id"` // "home/name"
	Critical bool   `json:"critical,omitempty"`
	// PlannedOn is the server the plan gives the camera to; empty when
	// nobody can record it.
	PlannedOn string `json:"planned_on,omitempty"`
	// Unrecorded says why nobody records it (Unrecorded*); empty when
	// planned, and also while the plan is not made yet.
	Unrecorded string `json:"unrecorded,omitempty"`
}

// ServerInfo is one server in GET /api/v1/cluster.
type ServerInfo struct {
	Name        string      `json:"name"`
	State       buddy.State `json:"state"`
	Address     string      `json:"address,omitempty"`
	HTTP        string      `json:"http,omitempty"`
	RTSP        string      `json:"rtsp,omitempty"`
	Cameras     int         `json:"cameras"` // recorded now, own + adopted
	Capacity    Capacity    `json:"capacity"`
	AdoptedFrom []string    `json:"adopted_from"`
	Stable      bool        `json:"stable"`
	ConfigHash  string      `json:"config_hash,omitempty"`
	Load        Load        `json:"load"`
	// Inventory is the server's own cameras, sorted by id, whether it is
	// up or not.
	Inventory []HomeCamera `json:"inventory"`
	// Maintenance: the server is draining (or drained): its cameras are
	// handed to buddies and it is no failover target. The page shows its
	// state as "maintenance".
	Maintenance bool `json:"maintenance,omitempty"`
}

// Cluster is the body of GET /api/v1/cluster.
type Cluster struct {
	Self    string       `json:"self"`
	Servers []ServerInfo `json:"servers"`
}

// MinTime and MaxTime bound the times buddyrec can represent: the index
// stores nanoseconds since 1970 in an int64. A time outside them would wrap
// around and silently select the wrong footage, so it is refused instead.
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// ParseTime reads one time parameter (RFC 3339, fractions allowed). The
// error names the parameter and says what is wrong with the value: not a
// time at all, or a time outside MinTime..MaxTime.
func ParseTime(param, value string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return t, fmt.Errorf("%s: %s is not an RFC 3339 time (such as 2006-01-02T15:04:05Z; years have 4 digits)", param, quoteShort(value))
	}
	if t.Before(MinTime) || t.After(MaxTime) {
		return t, fmt.Errorf("%s: %s is outside the times buddyrec can represent (%s to %s)", param, quoteShort(value),
			MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return t, nil
}

// quoteShort quotes a query value for an error message, cut to a length
// that keeps the message readable.
func quoteShort(v string) string {
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

// ParseRange reads the from and to query parameters (RFC3339) that every
// time-range endpoint takes. A missing to is now; a missing from is to
// minus def. Errors name the parameter, for a 400 answer.
func ParseRange(q url.Values, now time.Time, def time.Duration) (from, to time.Time, err error) {
	to = now
	if s := q.Get("to"); s != "" {
		if to, err = ParseTime("to", s); err != nil {
			return from, to, err
		}
	}
	from = to.Add(-def)
	if s := q.Get("from"); s != "" {
		if from, err = ParseTime("from", s); err != nil {
			return from, to, err
		}
	} else if from.Before(MinTime) {
		from = MinTime
	}
	if !to.After(from) {
		return from, to, errors.New("to: must be after from")
	}
	return from, to, nil
}
