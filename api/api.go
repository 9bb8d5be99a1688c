// Package api holds the JSON shapes of buddyrec's HTTP API (/api/v1/...),
// shared by the server that answers, the status page that renders them and
// peers that fetch them from each other.
package api

import (
	"errors"
	"net/url"
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
	LiveURL        string    `json:"live_url,omitempty"` // rtsp://host:port/home/name, no credentials
}

// AspectInfo is one aspect a server holds (its own or adopted).
type AspectInfo struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Home   string `json:"home"`
	HeldBy string `json:"held_by"`
}

// Cameras is the body of GET /api/v1/cameras.
type Cameras struct {
	Server  string       `json:"server"`
	Cameras []CameraInfo `json:"cameras"`
	Aspects []AspectInfo `json:"aspects"`
}

// Span is contiguous footage in GET /api/v1/recordings.
type Span struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	RecordedBy string    `json:"recorded_by"`
}

// Recordings is the body of GET /api/v1/recordings.
type Recordings struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Spans  []Span    `json:"spans"`
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
	Viewers     int     `json:"viewers"`
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
}

// Cluster is the body of GET /api/v1/cluster.
type Cluster struct {
	Self    string       `json:"self"`
	Servers []ServerInfo `json:"servers"`
}

// ParseRange reads the from and to query parameters (RFC3339) that every
// time-range endpoint takes. A missing to is now; a missing from is to
// minus def. Errors name the parameter, for a 400 answer.
func ParseRange(q url.Values, now time.Time, def time.Duration) (from, to time.Time, err error) {
	to = now
	if s := q.Get("to"); s != "" {
		if to, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return from, to, errors.New("to: not an RFC3339 time")
		}
	}
	from = to.Add(-def)
	if s := q.Get("from"); s != "" {
		if from, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return from, to, errors.New("from: not an RFC3339 time")
		}
	}
	if !to.After(from) {
		return from, to, errors.New("to: must be after from")
	}
	return from, to, nil
}
