// Package recorder pulls RTSP cameras and hands their access units to
// storage. Each camera runs as one supervised Pipeline: it reconnects with
// backoff, survives panics and garbage, and never lets a slow disk hold up
// the network reader, because samples pass through a bounded queue to a
// per-camera writer goroutine.
package recorder

import (
	"net/url"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

// Camera is one stream to record.
type Camera struct {
	// ID is the site-wide id "home/name".
	ID string
	// Home is the server whose config owns the camera.
	Home string
	// URL is the RTSP URL, credentials included (rtsp://user:pass@host/path).
	URL string
	// Transport is "tcp" (default), "udp" or "auto" (UDP, then TCP).
	Transport string
	// Standby is StandbyNone to record, or how to stand by for the home
	// (hot or mirror). Changing only Standby keeps the session.
	Standby Standby
}

// session is the camera without its standby mode: what a change of
// needs a new RTSP session.
func (c Camera) session() Camera {
	c.Standby = StandbyNone
	return c
}

// Sink receives what the recorder captures; *storage.Store satisfies it
// through a small adapter.
type Sink interface {
	// Begin starts a new stream (one RTSP session, or a new resolution).
	Begin(storage.Stream) (SampleWriter, error)
}

// SampleWriter takes the samples of one stream in order.
type SampleWriter interface {
	Write(storage.Sample) error
	Close() error
}

// State is where a pipeline is; the values are the wire strings of the
// API ("state" of a camera) and of metrics labels.
//
// State is an alias of string rather than a defined type only because
// node/control.go still keeps camera states in map[string]string; make it
// `type State string` once that code moves into control/.
type State = string

// Pipeline states reported in Status.State.
const (
	// StateConnecting: the RTSP session is set up and playing, no key
	// frame has reached storage yet.
	StateConnecting State = "connecting"
	// StateRecording: key frames reach storage.
	StateRecording State = "recording"
	// StateOffline: the last session failed (Status.Reason says why) and
	// the pipeline waits to reconnect, or it was stopped.
	StateOffline State = "offline"
)

// States lists every State in the order a camera goes through them.
func States() []State { return []State{StateConnecting, StateRecording, StateOffline} }

// Reason says why a pipeline is offline, as a stable word the control loop
// and a PSIM can act on; Status.Error keeps the human detail. The values
// are the wire strings of the API ("reason" of a camera).
type Reason string

// Failure reasons reported in Status.Reason. The empty Reason means no
// failure since the pipeline last recorded.
const (
	// ReasonStopped: the pipeline was stopped by its owner, not a failure.
	ReasonStopped Reason = "stopped"
	// ReasonAuth: the camera refused the credentials (RTSP 401).
	ReasonAuth Reason = "auth"
	// ReasonUnreachable: no RTSP answer: connection refused, no route, DNS
	// failure, timeout before the session played, or an error status.
	ReasonUnreachable Reason = "unreachable"
	// ReasonNoMedia: the camera offers no H.264 or H.265 video track.
	ReasonNoMedia Reason = "no_media"
	// ReasonStall: the session played but video stopped arriving.
	ReasonStall Reason = "stall"
	// ReasonClosed: the camera ended a playing session.
	ReasonClosed Reason = "closed"
	// ReasonDecode: the camera sent video the depacketizer cannot read.
	ReasonDecode Reason = "decode"
	// ReasonWriteError: storage refused to begin a stream (a sample that
	// fails to write does not end the session: storage recovers by itself).
	ReasonWriteError Reason = "write_error"
	// ReasonConfig: the camera's URL or transport is invalid.
	ReasonConfig Reason = "config"
	// ReasonPanic: a bug in the pipeline; it was recovered and restarts.
	ReasonPanic Reason = "panic"
)

// Status is a snapshot of one pipeline for the API, the status page and
// metrics.
type Status struct {
	ID, Home string
	// State is StateConnecting, StateRecording or StateOffline.
	State string
	// Since is when State last changed, or the standby mode did: a hot
	// standby taken over in place has Since at the moment its writer had
	// written its ring and went on with the live samples, not when its
	// session began, so the page's "recording since" is when it records
	// here.
	Since time.Time
	// Started is when this pipeline was started (by Manager.Set): the
	// footage of its current run is what storage holds from then on.
	Started time.Time
	// Reason classifies the last failure; empty while recording. Act on
	// Reason, show Error.
	Reason Reason
	// Error is the last failure, with credentials removed; empty while
	// recording.
	Error string
	// FramesReceived counts complete video frames from the camera.
	FramesReceived uint64
	// FramesDropped counts samples (video or audio) discarded because the
	// writer queue was full, including non-key frames skipped afterwards
	// until the next key frame.
	FramesDropped uint64
	// BytesReceived counts RTP payload bytes.
	BytesReceived uint64
	// Reconnects counts connection attempts after a failure.
	Reconnects uint64
	// LastKeyframe is when the last key frame was handed to the sink.
	LastKeyframe time.Time
	// Bitrate is the recent received bitrate in bits per second.
	Bitrate float64
	// Codec names the recorded tracks, e.g. "H264+AAC".
	Codec string
	// NextAttempt is when the next connection attempt is due while the
	// camera is offline (an attempt comes sooner if a probe finds the
	// camera back); zero while connecting or recording.
	NextAttempt time.Time
	// Standby is the pipeline's standby mode; StandbyNone when it records
	// the camera as its own or adopted. For a hot standby, StateRecording
	// means keyframes reach its ring.
	Standby Standby
	// HeldBytes and HeldSpan are what a hot standby's ring holds now;
	// HeldNeed is the span it must hold (the window plus two GOPs), and
	// HeldResident the memory its payloads occupy (whole pages). All four
	// are taken at the ring's keyframes, right after it dropped its
	// oldest GOP: the ring is at its smallest then, and grows by up to a
	// GOP until the next.
	HeldBytes    int64
	HeldSpan     time.Duration
	HeldNeed     time.Duration
	HeldResident int64
}

// redactString removes the credentials of rawURL from s: its userinfo as
// written, and the password both as written and decoded (config writes
// passwords percent-encoded, and a library may quote either form).
func redactString(s, rawURL string) string {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return s
	}
	rest := rawURL[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	userinfo := rest[:at]
	s = strings.ReplaceAll(s, userinfo+"@", "")
	c := strings.IndexByte(userinfo, ':')
	if c < 0 || c+1 >= len(userinfo) {
		return s
	}
	pass := userinfo[c+1:]
	secrets := []string{pass}
	if dec, err := url.PathUnescape(pass); err == nil && dec != pass {
		secrets = append(secrets, dec)
	}
	for _, p := range secrets {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}

// redactURL returns rawURL with the password replaced, for logs.
func redactURL(rawURL string) string {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return rawURL
	}
	rest := rawURL[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return rawURL
	}
	userinfo := rest[:at]
	if c := strings.IndexByte(userinfo, ':'); c >= 0 {
		userinfo = userinfo[:c] + ":xxxxx"
	}
	return rawURL[:i+3] + userinfo + rest[at:]
}
