package recorder

import (
	"sync"
	"sync/atomic"

	"github.com/buddyrec/buddyrec/storage"
)

// Frame is one sample delivered live. Stream identifies the stream it
// belongs to: a new pointer means new codec parameters (reconnect or
// resolution change). Payload is shared with storage and must not be
// modified.
type Frame struct {
	Stream *storage.Stream
	Sample storage.Sample
}

// Startable reports whether a viewer can start decoding at f: a video
// keyframe, or any frame of a stream without video.
func (f Frame) Startable() bool {
	if f.Stream == nil || f.Sample.Track < 0 || f.Sample.Track >= len(f.Stream.Tracks) {
		return false
	}
	hasVideo := false
	for _, t := range f.Stream.Tracks {
		if t.Codec != nil && t.Codec.IsVideo() {
			hasVideo = true
		}
	}
	if !hasVideo {
		return true
	}
	c := f.Stream.Tracks[f.Sample.Track].Codec
	return c != nil && c.IsVideo() && f.Sample.Sync
}

// GOP holds the frames of a camera since its last keyframe, so that a new
// viewer can start decoding at once instead of waiting up to a whole GOP
// for the next keyframe. It is bounded: a GOP longer than MaxBytes is not
// kept (a viewer then waits for the next keyframe, as without a cache).
// The payloads are shared, never copied: recording allocates each sample
// anyway, and the cache only keeps them alive for one GOP.
type GOP struct {
	// MaxBytes bounds the payload bytes held (default 8 MiB).
	MaxBytes int
	frames   []Frame
	bytes    int
	valid    bool
}

// Add records f: a keyframe starts a new GOP.
func (g *GOP) Add(f Frame) {
	max := g.MaxBytes
	if max <= 0 {
		max = 8 << 20
	}
	if f.Startable() {
		clear(g.frames)
		g.frames, g.bytes, g.valid = g.frames[:0], 0, true
	}
	if !g.valid {
		return
	}
	if len(g.frames) > 0 && g.frames[0].Stream != f.Stream {
		g.Reset() // a new stream must start at its own keyframe
		return
	}
	g.bytes += f.Sample.Size()
	if g.bytes > max {
		g.Reset()
		return
	}
	g.frames = append(g.frames, f)
}

// Reset forgets the cached GOP.
func (g *GOP) Reset() {
	clear(g.frames)
	g.frames, g.bytes, g.valid = g.frames[:0], 0, false
}

// Frames is the cached GOP, keyframe first; nil when none is held. The
// slice is the cache's own: copy it before the next Add.
func (g *GOP) Frames() []Frame {
	if !g.valid {
		return nil
	}
	return g.frames
}

// hub fans one camera's frames out to live subscribers. It outlives
// pipeline restarts so viewers keep their subscription across reconnects.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	gop    GOP
	closed bool
}

type subscriber struct {
	ch      chan Frame
	dropped atomic.Uint64
}

// publish never blocks: a subscriber whose buffer is full misses the frame.
// cache keeps the GOP for viewers to come; a hot standby does not (no
// viewer is sent to a server that does not record the camera, and the
// cached GOP would keep a second copy of what its ring holds): its
// cache starts again at the first keyframe after a takeover.
func (h *hub) publish(f Frame, cache bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cache {
		h.gop.Add(f)
	} else if h.gop.Frames() != nil {
		h.gop.Reset()
	}
	for s := range h.subs {
		select {
		case s.ch <- f:
		default:
			s.dropped.Add(1)
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.gop.Reset()
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}

// Subscribe delivers camera id's frames as they arrive, for live viewing.
// The channel holds buf frames; when the subscriber falls behind, frames are
// dropped rather than delaying recording. cancel ends the subscription and
// closes the channel; Manager.Close does the same. A camera that is not
// (yet) recorded can be subscribed to and starts delivering once it is.
func (m *Manager) Subscribe(id string, buf int) (<-chan Frame, func()) {
	return m.subscribe(id, buf, false)
}

// SubscribeFromKeyframe is Subscribe, but the channel first delivers the
// camera's current GOP (from its last keyframe, as far as buf allows), so a
// viewer starts decoding at once.
func (m *Manager) SubscribeFromKeyframe(id string, buf int) (<-chan Frame, func()) {
	return m.subscribe(id, buf, true)
}

func (m *Manager) subscribe(id string, buf int, fromKeyframe bool) (<-chan Frame, func()) {
	if buf < 1 {
		buf = 1
	}
	s := &subscriber{ch: make(chan Frame, buf)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	h := m.hubLocked(id)
	m.mu.Unlock()
	h.mu.Lock()
	if h.closed {
		close(s.ch)
	} else {
		// a GOP that does not fit is not sent at all: a GOP missing
		// frames would not decode, the next keyframe will
		if gop := h.gop.Frames(); fromKeyframe && len(gop) <= cap(s.ch) {
			for _, f := range gop {
				s.ch <- f
			}
		}
		h.subs[s] = struct{}{}
	}
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
}
