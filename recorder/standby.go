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

// ringEntry is one held sample with the stream it belongs to, its
// payload in the ring's arena at pos. It is storage.Sample without the
// slice header, packed: a ring holds a few hundred of them per camera
// (48 bytes each; with the arrival as a time.Time, 64).
type ringEntry struct {
	stream *storage.Stream
	// arrival is the sample's Arrival as an offset from the ring's base,
	// which keeps the monotonic clock reading: spans and GOPs measured on
	// it do not move when the wall clock is stepped.
	arrival   time.Duration
	dts       int64
	pos       int64
	size      int32
	ptsOffset int32
	track     int16
	sync      bool
}

func (e *ringEntry) key() bool { return e.track == 0 && e.sync }

// ring holds the samples of a hot standby: always from a video keyframe
// on, at least window (plus two GOPs) long once that much has arrived,
// and at most maxBytes of payload. The payloads are copied into one
// arena per session (see payloadArena: outside the Go heap, no
// allocation per sample, pages returned as GOPs are evicted), so a ring
// costs what it holds; they leave it as heap copies, only when the ring
// is taken over. Only the pipeline's writer goroutine touches it; the
// figures it reports are read under Pipeline.mu. close releases the
// arena: call it when the session ends.
type ring struct {
	window   time.Duration
	maxBytes int
	entries  []ringEntry
	keys     []int // indices in entries of the video keyframes, ascending
	bytes    int
	gop      time.Duration // the last keyframe interval (arrival times)
	base     time.Time     // what entries' arrivals are offsets from: the first sample's arrival
	arena    *payloadArena
	bufs     [][]byte // the sample being added, as buffers; reused
	// err is an arena failure (the reservation was refused): the ring
	// then holds nothing for the rest of the session, and the takeover
	// waits for a keyframe as a cold one does.
	err error
}

// add holds smp, of stream; its payload is copied, the caller keeps it.
func (r *ring) add(stream *storage.Stream, smp storage.Sample) {
	e := ringEntry{stream: stream, dts: smp.DTS, ptsOffset: smp.PTSOffset,
		track: int16(smp.Track), sync: smp.Sync, size: int32(smp.Size())}
	key := e.key()
	if r.err != nil || len(r.entries) == 0 && !key {
		return // a ring starts at a keyframe
	}
	if r.base.IsZero() {
		r.base = smp.Arrival
	}
	e.arrival = smp.Arrival.Sub(r.base)
	n := int(e.size)
	if n > r.maxBytes {
		r.reset() // a sample larger than the bound: hold nothing
		return
	}
	if r.arena == nil {
		r.arena = newPayloadArena(r.maxBytes)
	}
	if key {
		if k := len(r.keys); k > 0 {
			r.gop = e.arrival - r.entries[r.keys[k-1]].arrival
		}
	}
	// Room first, whole GOPs from the front (what the byte bound would
	// drop after the add anyway): the arena never holds more than
	// maxBytes.
	for !r.arena.fits(n) && len(r.keys) >= 2 {
		r.drop(r.keys[1])
	}
	if !r.arena.fits(n) {
		r.reset() // one GOP larger than the bound: hold nothing
		if !key || !r.arena.fits(n) {
			return
		}
	}
	r.bufs = smp.AppendBuffers(r.bufs[:0])
	pos, err := r.arena.writeAll(r.bufs)
	clear(r.bufs) // hold no payload past the copy
	if err != nil {
		r.err = err
		r.reset()
		return
	}
	if key {
		r.keys = append(r.keys, len(r.entries))
	}
	e.pos = pos
	r.entries = append(r.entries, e)
	r.bytes += n
	r.trim(e.arrival)
}

// trim drops whole GOPs from the front while what stays still reaches
// back window + 2 GOPs from now (an arrival offset).
func (r *ring) trim(now time.Duration) {
	keep := r.need()
	for len(r.keys) >= 2 {
		if now-r.entries[r.keys[1]].arrival < keep {
			break
		}
		r.drop(r.keys[1])
	}
}

// drop removes entries[:n] and gives their bytes back to the arena.
func (r *ring) drop(n int) {
	for _, e := range r.entries[:n] {
		r.bytes -= int(e.size)
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
	if len(r.entries) > 0 {
		r.arena.discard(r.entries[0].pos)
	} else {
		r.arena.reset()
	}
}

func (r *ring) reset() {
	clear(r.entries)
	r.entries, r.keys, r.bytes = r.entries[:0], r.keys[:0], 0
	if r.arena != nil {
		r.arena.reset()
	}
}

// need is how far back the ring must reach: the window plus two GOPs.
func (r *ring) need() time.Duration { return r.window + 2*r.gop }

// at is e's arrival time.
func (r *ring) at(e ringEntry) time.Time { return r.base.Add(e.arrival) }

// span is how far back the ring reaches.
func (r *ring) span() time.Duration {
	if len(r.entries) == 0 {
		return 0
	}
	return r.entries[len(r.entries)-1].arrival - r.entries[0].arrival
}

// resident is the memory the ring's payloads occupy (whole pages).
func (r *ring) resident() int64 {
	if r.arena == nil {
		return 0
	}
	return r.arena.resident()
}

// drain hands the held samples to fn in order, each payload a heap copy
// that fn may keep (storage owns what it is given), and empties the
// ring. It stops at the first false from fn and reports it.
func (r *ring) drain(fn func(stream *storage.Stream, smp storage.Sample) bool) bool {
	defer r.reset()
	for _, e := range r.entries {
		smp := storage.Sample{Track: int(e.track), DTS: e.dts, PTSOffset: e.ptsOffset, Sync: e.sync,
			Payload: r.arena.read(e.pos, int(e.size)), Arrival: r.at(e)}
		if !fn(e.stream, smp) {
			return false
		}
	}
	return true
}

// close empties the ring and releases its arena.
func (r *ring) close() {
	r.reset()
	if r.arena != nil {
		r.arena.close()
	}
}
