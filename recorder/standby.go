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

// ring holds the samples of a hot standby: the last need() of them
// (window plus two GOPs) once that much has arrived, and at most
// maxBytes of payload. It evicts sample by sample, so it costs what the
// span it must hold costs: a ring that evicted whole GOPs (to start at
// a keyframe) would hold up to a GOP more, half a GOP on average. What
// it hands back starts at its first keyframe, at most one GOP into it:
// at or before now − window − 1 GOP, so still before the home's last
// durable footage (see ManagerOptions.StandbyWindow). It always holds a
// keyframe once it holds anything: it starts at one and never evicts
// its latest.
//
// The payloads are copied into one arena per session (see
// payloadArena: outside the Go heap, no allocation per sample, pages
// returned as samples are evicted), so a ring costs what it holds; they
// leave it as heap copies, only when the ring is taken over. Only the
// pipeline's writer goroutine touches it; the figures it reports are
// read under Pipeline.mu. close releases the arena: call it when the
// session ends.
type ring struct {
	window   time.Duration
	maxBytes int
	// entries[head:] are the samples held, oldest first; entries[:head]
	// were evicted (and cleared) and are reclaimed by compact.
	entries []ringEntry
	head    int
	keys    []int // indices in entries of the held video keyframes, ascending
	bytes   int
	gop     time.Duration // the last keyframe interval (arrival times)
	lastKey time.Duration // the latest keyframe's arrival, for gop
	base    time.Time     // what entries' arrivals are offsets from: the first sample's arrival
	arena   *payloadArena
	bufs    [][]byte // the sample being added, as buffers; reused
	// err is an arena failure (the reservation was refused): the ring
	// then holds nothing for the rest of the session, and the takeover
	// waits for a keyframe as a cold one does.
	err error
}

// held is what the ring holds, oldest first.
func (r *ring) held() []ringEntry { return r.entries[r.head:] }

// add holds smp, of stream; its payload is copied, the caller keeps it.
func (r *ring) add(stream *storage.Stream, smp storage.Sample) {
	e := ringEntry{stream: stream, dts: smp.DTS, ptsOffset: smp.PTSOffset,
		track: int16(smp.Track), sync: smp.Sync, size: int32(smp.Size())}
	key := e.key()
	if r.err != nil || len(r.held()) == 0 && !key {
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
		if len(r.keys) > 0 {
			r.gop = e.arrival - r.lastKey
		}
		r.lastKey = e.arrival
	}
	// Room first (what the byte bound would evict after the add anyway),
	// so that the arena never holds more than maxBytes. Under the bound
	// the ring evicts to a keyframe, the samples before the first one and
	// then whole GOPs: samples before a keyframe are of no use alone.
	for !r.arena.fits(n) {
		if k := r.keys; len(k) > 0 && r.head < k[0] {
			r.evict(k[0])
		} else if len(k) >= 2 {
			r.evict(k[1])
		} else {
			break
		}
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

// trim evicts the samples older than need() before now (an arrival
// offset), but never the latest keyframe.
func (r *ring) trim(now time.Duration) {
	keep, i := r.need(), r.head
	for i < r.keys[len(r.keys)-1] && now-r.entries[i].arrival > keep {
		i++
	}
	r.evict(i)
}

// evict drops the held samples before entries[i] and gives their bytes
// back to the arena.
func (r *ring) evict(i int) {
	if i <= r.head {
		return
	}
	for _, e := range r.entries[r.head:i] {
		r.bytes -= int(e.size)
	}
	clear(r.entries[r.head:i]) // their streams
	r.head = i
	k := 0
	for k < len(r.keys) && r.keys[k] < i {
		k++
	}
	r.keys = r.keys[:copy(r.keys, r.keys[k:])]
	if r.head < len(r.entries) {
		r.arena.discard(r.entries[r.head].pos)
	} else {
		r.arena.reset()
	}
	r.compact()
}

// compact moves what is held to the front of entries once the evicted
// part is a sizeable share of it, so entries stays about as long as what
// is held (a copy of a few kilobytes every few dozen samples).
func (r *ring) compact() {
	if r.head < 64 || r.head < len(r.entries)/8 {
		return
	}
	n := copy(r.entries, r.entries[r.head:])
	clear(r.entries[n:])
	r.entries = r.entries[:n]
	for k := range r.keys {
		r.keys[k] -= r.head
	}
	r.head = 0
}

func (r *ring) reset() {
	clear(r.entries)
	r.entries, r.keys, r.head, r.bytes = r.entries[:0], r.keys[:0], 0, 0
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
	h := r.held()
	if len(h) == 0 {
		return 0
	}
	return h[len(h)-1].arrival - h[0].arrival
}

// usable is what a takeover writes: the held samples from the first
// keyframe on.
func (r *ring) usable() []ringEntry {
	if len(r.keys) == 0 {
		return nil
	}
	return r.entries[r.keys[0]:]
}

// resident is the memory the ring's payloads occupy (whole pages).
func (r *ring) resident() int64 {
	if r.arena == nil {
		return 0
	}
	return r.arena.resident()
}

// drain hands the usable samples to fn in order, each payload a heap
// copy that fn may keep (storage owns what it is given), and empties the
// ring. It stops at the first false from fn and reports it.
func (r *ring) drain(fn func(stream *storage.Stream, smp storage.Sample) bool) bool {
	defer r.reset()
	for _, e := range r.usable() {
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
