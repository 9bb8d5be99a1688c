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

// Pipeline states reported in Status.State.
const (
	StateConnecting = "connecting"
	StateRecording  = "recording"
	StateOffline    = "offline"
)

// Status is a snapshot of one pipeline for the API, the status page and
// metrics.
type Status struct {
	ID, Home string
	// State is StateConnecting, StateRecording or StateOffline.
	State string
	// Since is when State last changed.
	Since time.Time
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
