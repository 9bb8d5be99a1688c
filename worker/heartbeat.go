package worker

import (
	"slices"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
)

// heartbeatRoute is the worker's answer to the supervisor's heartbeat:
// the status of every camera it records, in the compact form wireStatus.
// GET /status answers the same in recorder.Status's own JSON, for a
// supervisor of an older release and for people debugging over the
// socket.
const heartbeatRoute = "/heartbeat"

// wireStatus is recorder.Status as the heartbeat carries it: one-letter
// keys, zero fields left out, instants as Unix nanoseconds and spans as
// nanoseconds.
//
// Why not recorder.Status's own JSON: the supervisor decodes every
// camera's status at every heartbeat (500 ms), and in that form most of
// the cost is matching long field names and parsing RFC 3339 instants
// (five per camera). bench record at 250 cameras in 10 workers: that
// decoding was 0.24 of the supervisor's 1.2 CPU-s per 30 s (the
// supervisor's CPU profile). BenchmarkHeartbeatDecode compares the two
// forms.
//
// Invariant: fromWire(toWire(s)) equals s for every recorder.Status, up
// to the location of its instants (both forms keep the instant to the
// nanosecond, neither keeps a monotonic reading). TestWireStatusCarriesEveryField
// sets every field by reflection, so a field added to recorder.Status
// and not here fails it.
type wireStatus struct {
	ID             string           `json:"i"`
	Home           string           `json:"h,omitempty"`
	State          string           `json:"s,omitempty"`
	Since          int64            `json:"t,omitempty"`
	Started        int64            `json:"b,omitempty"`
	Reason         recorder.Reason  `json:"r,omitempty"`
	Error          string           `json:"e,omitempty"`
	FramesReceived uint64           `json:"f,omitempty"`
	FramesDropped  uint64           `json:"d,omitempty"`
	BytesReceived  uint64           `json:"n,omitempty"`
	Reconnects     uint64           `json:"c,omitempty"`
	LastKeyframe   int64            `json:"k,omitempty"`
	Bitrate        float64          `json:"br,omitempty"`
	Codec          string           `json:"co,omitempty"`
	NextAttempt    int64            `json:"a,omitempty"`
	Standby        recorder.Standby `json:"sb,omitempty"`
	HeldBytes      int64            `json:"hb,omitempty"`
	HeldSpan       time.Duration    `json:"hs,omitempty"`
	HeldNeed       time.Duration    `json:"hn,omitempty"`
	HeldResident   int64            `json:"hr,omitempty"`
}

// unixNano is t as Unix nanoseconds, 0 for the zero time (whose own
// UnixNano is out of range).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano reverses unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func toWire(s recorder.Status) wireStatus {
	return wireStatus{
		ID: s.ID, Home: s.Home, State: s.State, Since: unixNano(s.Since), Started: unixNano(s.Started),
		Reason: s.Reason, Error: s.Error,
		FramesReceived: s.FramesReceived, FramesDropped: s.FramesDropped, BytesReceived: s.BytesReceived, Reconnects: s.Reconnects,
		LastKeyframe: unixNano(s.LastKeyframe), Bitrate: s.Bitrate, Codec: s.Codec, NextAttempt: unixNano(s.NextAttempt),
		Standby: s.Standby, HeldBytes: s.HeldBytes, HeldSpan: s.HeldSpan, HeldNeed: s.HeldNeed, HeldResident: s.HeldResident,
	}
}

func fromWire(w wireStatus) recorder.Status {
	return recorder.Status{
		ID: w.ID, Home: w.Home, State: w.State, Since: fromUnixNano(w.Since), Started: fromUnixNano(w.Started),
		Reason: w.Reason, Error: w.Error,
		FramesReceived: w.FramesReceived, FramesDropped: w.FramesDropped, BytesReceived: w.BytesReceived, Reconnects: w.Reconnects,
		LastKeyframe: fromUnixNano(w.LastKeyframe), Bitrate: w.Bitrate, Codec: w.Codec, NextAttempt: fromUnixNano(w.NextAttempt),
		Standby: w.Standby, HeldBytes: w.HeldBytes, HeldSpan: w.HeldSpan, HeldNeed: w.HeldNeed, HeldResident: w.HeldResident,
	}
}

// heartbeatAnswer is the body of GET heartbeatRoute.
func heartbeatAnswer(sts []recorder.Status) []wireStatus {
	out := make([]wireStatus, len(sts))
	for i, s := range sts {
		out[i] = toWire(s)
	}
	return out
}

// readHeartbeat appends a decoded heartbeat to out as statuses.
func readHeartbeat(out []recorder.Status, ws []wireStatus) []recorder.Status {
	out = slices.Grow(out, len(ws))
	for _, w := range ws {
		out = append(out, fromWire(w))
	}
	return out
}
