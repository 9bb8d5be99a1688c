package recorder

import (
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

// Standby is how a pipeline prepares to take a camera over from its home
// while the home records it. The empty Standby records.
//
// A pipeline changes between modes in place (Manager.Set): its RTSP
// session stays up. Hot to recording writes the ring first, from its
// oldest keyframe, and goes on with the live samples: no reconnect, no
// keyframe wait, no gap. Recording to hot closes the current file and
// starts holding.
type Standby string

const (
	// StandbyNone records: the camera is this server's to record.
	StandbyNone Standby = ""
	// StandbyHot keeps the session open and the last Window of samples in
	// a bounded ring in memory, written nowhere.
	StandbyHot Standby = "hot"
	// StandbyMirror records to this server's own disk all the time, as any
	// recording (storage indexes it with home = Camera.Home and
	// recorded_by = this server).
	StandbyMirror Standby = "mirror"
)

// DefaultRingBytes bounds one hot standby ring when
// ManagerOptions.StandbyMaxBytes is zero: 64 MiB holds 40 s of a 12 Mbit/s
// camera. A ring that cannot hold Window within it is reset, and the
// takeover of that camera waits for a keyframe like a cold one.
const DefaultRingBytes = 64 << 20

// ringEntry is one held sample with the stream it belongs to.
type ringEntry struct {
	stream *storage.Stream
	sample storage.Sample
}

// ring holds the samples of a hot standby: always from a video keyframe
// on, at least window (plus two GOPs) long once that much has arrived,
// and at most maxBytes of payload. Payloads are shared with the live hub,
// never copied. Only the pipeline's writer goroutine touches it; the
// figures it reports are read under Pipeline.mu.
type ring struct {
	window   time.Duration
	maxBytes int
	entries  []ringEntry
	keys     []int // indices in entries of the video keyframes, ascending
	bytes    int
	gop      time.Duration // the last keyframe interval (arrival times)
}

func (r *ring) add(e ringEntry) {
	key := e.sample.Track == 0 && e.sample.Sync
	if len(r.entries) == 0 && !key {
		return // a ring starts at a keyframe
	}
	if key {
		if n := len(r.keys); n > 0 {
			r.gop = e.sample.Arrival.Sub(r.entries[r.keys[n-1]].sample.Arrival)
		}
		r.keys = append(r.keys, len(r.entries))
	}
	r.entries = append(r.entries, e)
	r.bytes += len(e.sample.Payload)
	r.trim(e.sample.Arrival)
}

// trim drops whole GOPs from the front while what stays still reaches
// back window + 2 GOPs, and while the ring is over its byte bound.
func (r *ring) trim(now time.Time) {
	keep := r.window + 2*r.gop
	for len(r.keys) >= 2 {
		second := r.entries[r.keys[1]].sample.Arrival
		if now.Sub(second) < keep && r.bytes <= r.maxBytes {
			break
		}
		r.drop(r.keys[1])
	}
	if r.bytes > r.maxBytes {
		r.reset() // one GOP larger than the bound: hold nothing
	}
}

// drop removes entries[:n].
func (r *ring) drop(n int) {
	for _, e := range r.entries[:n] {
		r.bytes -= len(e.sample.Payload)
	}
	clear(r.entries[:n])
	r.entries = append(r.entries[:0], r.entries[n:]...)
	k := 0
	for _, i := range r.keys {
		if i >= n {
			r.keys[k] = i - n
			k++
		}
	}
	r.keys = r.keys[:k]
}

func (r *ring) reset() {
	clear(r.entries)
	r.entries, r.keys, r.bytes = r.entries[:0], r.keys[:0], 0
}

// span is how far back the ring reaches.
func (r *ring) span() time.Duration {
	if len(r.entries) == 0 {
		return 0
	}
	return r.entries[len(r.entries)-1].sample.Arrival.Sub(r.entries[0].sample.Arrival)
}

// take hands the ring's entries over and empties it.
func (r *ring) take() []ringEntry {
	out := r.entries
	r.entries, r.keys, r.bytes = nil, nil, 0
	return out
}
