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

// hub fans one camera's frames out to live subscribers. It outlives
// pipeline restarts so viewers keep their subscription across reconnects.
type hub struct {
	mu     sync.RWMutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch      chan Frame
	dropped atomic.Uint64
}

// publish never blocks: a subscriber whose buffer is full misses the frame.
func (h *hub) publish(f Frame) {
	h.mu.RLock()
	defer h.mu.RUnlock()
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
