// Package view shows cameras in the browser: /view?camera=ID is a page with
// a <video> element that plays the camera live (fMP4 fragments over a
// WebSocket into Media Source Extensions, no plugin, no transcoding) or,
// with &at=RFC3339, recorded footage from that time (the site-wide export
// stream), with a seek bar over the recorded spans.
//
// Invariants:
//   - A browser viewer is a viewer: it takes a slot of [capacity] viewers,
//     its queue is bounded, and a viewer that falls behind is dropped (the
//     page reconnects by itself); nothing waits for it.
//   - One camera is muxed once per server, however many browsers watch it:
//     a hub per camera subscribes to the site source (which relays cameras
//     recorded elsewhere) and fans fragments out.
//   - A viewer starts at a keyframe, at once: the hub holds the fragments of
//     the current GOP and sends them first.
package view

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/recorder"
)

// Source delivers a camera's frames wherever it is recorded (relay.Site).
type Source interface {
	SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func())
}

// Camera is what the page says about a camera besides its video.
type Camera struct {
	ID         string `json:"id"`
	RecordedBy string `json:"recorded_by,omitempty"`
	Codec      string `json:"codec,omitempty"`
	LiveURL    string `json:"live_url,omitempty"` // RTSP, for players other than the browser
}

// Options configures a Server.
type Options struct {
	// Source delivers frames. Required.
	Source Source
	// Camera describes camera id; ok=false for a camera the site does not
	// know (404).
	Camera func(id string) (Camera, bool)
	// Admit takes a viewer slot; ok=false when the server is at its
	// [capacity] viewers. release gives the slot back. nil admits all.
	Admit func() (release func(), ok bool)
	// QueueSize is the number of messages buffered for one viewer (default
	// 256); a viewer that falls this far behind is dropped.
	QueueSize int
	// GOPBytes bounds the fragments cached per camera for a fast start
	// (default 8 MiB).
	GOPBytes int
	// Idle is how long a hub stays subscribed with no viewer (default 10 s),
	// so a page reload finds the GOP cache warm.
	Idle time.Duration
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Server serves the view page and its WebSocket.
type Server struct {
	o   Options
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dropped atomic.Uint64 // viewers dropped for falling behind

	// mu guards hubs and viewers; lock order: Server.mu before hub.mu.
	mu      sync.Mutex
	hubs    map[string]*hub
	viewers int
}

// New returns a Server; Close ends its viewers and hubs.
func New(o Options) *Server {
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.GOPBytes <= 0 {
		o.GOPBytes = 8 << 20
	}
	if o.Idle <= 0 {
		o.Idle = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, log: o.Logger, hubs: map[string]*hub{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close disconnects every viewer and waits for the hubs. It is idempotent.
func (s *Server) Close() {
	// Under mu: join checks ctx under mu before it adds a hub to wg, so no
	// hub is added once Wait may have begun.
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// Viewers is the number of browser viewers now.
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewers
}

// Dropped is the number of viewers dropped for falling behind.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// Routes served by Handler.
const (
	RoutePage   = "GET /view"
	RouteSocket = "GET /view/ws"
	RouteAssets = "GET /view/assets/"
)

//go:embed assets
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/view.html"))

// Handler serves RoutePage, RouteSocket and RouteAssets (mount each).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(RoutePage, s.servePage)
	mux.HandleFunc(RouteSocket, s.serveSocket)
	sub, _ := fs.Sub(assets, "assets")
	mux.Handle(RouteAssets, http.StripPrefix("/view/assets/", http.FileServerFS(sub)))
	return mux
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("camera")
	cam, ok := s.o.Camera(id)
	if id == "" || !ok {
		http.Error(w, "unknown camera "+template.HTMLEscapeString(id), http.StatusNotFound)
		return
	}
	at := r.URL.Query().Get("at")
	if at != "" {
		// the API's own check: a time the index and the export can hold,
		// so the page never asks them for one they would refuse
		if _, err := api.ParseTime("at", at); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest) // text/plain, nosniff
			return
		}
	}
	cfg, _ := json.Marshal(map[string]any{"camera": cam, "at": at})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	page.Execute(w, map[string]any{"Camera": cam, "Config": template.JS(cfg)}) //nolint:errcheck
}

// message is one WebSocket message to a viewer.
type message struct {
	text bool
	b    []byte
}

type viewer struct {
	ch chan message
	// kick closes the viewer's connection at once: a dropped viewer may be
	// stuck in a write to a browser that stopped reading.
	kick func()
	// waiting is true until the viewer's first keyframe: fragments before
	// it could not be decoded.
	waiting bool
}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("camera")
	if _, ok := s.o.Camera(id); id == "" || !ok {
		http.Error(w, "unknown camera", http.StatusNotFound)
		return
	}
	release := func() {}
	if s.o.Admit != nil {
		var ok bool
		if release, ok = s.o.Admit(); !ok {
			http.Error(w, "viewer limit reached", http.StatusServiceUnavailable)
			return
		}
	}
	defer release()
	c, err := websocket.Accept(w, r, nil) // same-origin only (the default)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(4096)
	ctx := c.CloseRead(r.Context())

	v := &viewer{ch: make(chan message, s.o.QueueSize), kick: func() { c.CloseNow() }}
	h := s.join(id, v)
	if h == nil {
		c.Close(websocket.StatusGoingAway, "server stopping")
		return
	}
	defer s.leave(h, v)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			c.Close(websocket.StatusGoingAway, "server stopping")
			return
		case m, ok := <-v.ch:
			if !ok {
				c.Close(websocket.StatusPolicyViolation, "viewer too slow")
				return
			}
			typ := websocket.MessageBinary
			if m.text {
				typ = websocket.MessageText
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Write(wctx, typ, m.b)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// join adds v to the camera's hub, starting it if needed; nil when closing.
func (s *Server) join(id string, v *viewer) *hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil
	}
	h := s.hubs[id]
	if h == nil {
		h = &hub{s: s, id: id, viewers: map[*viewer]struct{}{}, wake: make(chan struct{}, 1)}
		s.hubs[id] = h
		s.wg.Add(1)
		go func() { defer s.wg.Done(); h.run() }()
	}
	s.viewers++
	h.add(v)
	return h
}

func (s *Server) leave(h *hub, v *viewer) {
	s.mu.Lock()
	s.viewers--
	s.mu.Unlock()
	h.remove(v)
}

// hub muxes one camera for every viewer of it on this server.
type hub struct {
	s    *Server
	id   string
	wake chan struct{}

	mu      sync.Mutex
	viewers map[*viewer]struct{}
	hello   []message // the current stream's info and init segment
	gop     [][]byte  // fragments since the last keyframe; nil when unknown
	gopSize int
	lastUse time.Time
}

func (h *hub) add(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.viewers[v] = struct{}{}
	if h.hello != nil {
		for _, m := range h.hello {
			v.ch <- m
		}
		// a GOP that does not fit the queue would arrive incomplete: then
		// the viewer waits for the next keyframe instead
		if h.gop != nil && len(h.gop) <= cap(v.ch)-len(v.ch) {
			for _, f := range h.gop {
				v.ch <- message{b: f}
			}
			return
		}
	}
	v.waiting = true
}

func (h *hub) remove(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.viewers[v]; ok {
		delete(h.viewers, v)
	}
	h.lastUse = time.Now()
}

// What a message is to a viewer waiting for its first keyframe.
const (
	msgHello    = iota // stream info and init: every viewer gets it
	msgKeyframe        // a fragment a viewer can start at
	msgFragment        // any other fragment: not for waiting viewers
)

// send fans a message out; a viewer whose queue is full is dropped.
func (h *hub) send(m message, kind int) {
	for v := range h.viewers {
		switch {
		case kind == msgFragment && v.waiting:
			continue
		case kind == msgKeyframe:
			v.waiting = false
		}
		select {
		case v.ch <- m:
		default:
			delete(h.viewers, v)
			close(v.ch)
			go v.kick()
			h.s.dropped.Add(1)
			h.s.log.Info("browser viewer dropped: too slow", "camera", h.id)
		}
	}
}

func (h *hub) run() {
	s := h.s
	frames, cancel := s.o.Source.SubscribeFromKeyframe(h.id, 1024)
	defer cancel()
	defer func() {
		s.mu.Lock()
		delete(s.hubs, h.id)
		s.mu.Unlock()
		h.mu.Lock()
		for v := range h.viewers {
			delete(h.viewers, v)
			close(v.ch)
		}
		h.mu.Unlock()
	}()
	mux := newMuxer(time.Now())
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-idle.C:
			if h.idle() {
				return
			}
		case fr, ok := <-frames:
			if !ok {
				return
			}
			if fr.Stream != mux.cur {
				if !fr.Startable() {
					continue
				}
				init, err := mux.start(fr)
				if err != nil {
					s.log.Debug("browser view", "camera", h.id, "err", err)
					continue
				}
				h.newStream(init)
			}
			frag, key := mux.add(fr.Sample)
			if frag != nil {
				h.fragment(frag, key)
			}
		}
	}
}

// idle reports whether the hub has had no viewer for Options.Idle; it then
// unregisters it under the server lock, so a joining viewer starts another.
func (h *hub) idle() bool {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.viewers) > 0 || time.Since(h.lastUse) < s.o.Idle {
		return false
	}
	delete(s.hubs, h.id)
	return true
}

func (h *hub) newStream(init Init) {
	info, _ := json.Marshal(map[string]string{"type": "init", "mime": init.MIME, "codec": init.Codec})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hello = []message{{text: true, b: info}, {b: init.Bytes}}
	h.gop, h.gopSize = nil, 0
	for v := range h.viewers {
		v.waiting = true
	}
	for _, m := range h.hello {
		h.send(m, msgHello)
	}
}

func (h *hub) fragment(frag []byte, keyframe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if keyframe {
		h.gop, h.gopSize = h.gop[:0], 0
	}
	if h.gop != nil || keyframe {
		h.gopSize += len(frag)
		if h.gopSize > h.s.o.GOPBytes {
			h.gop, h.gopSize = nil, 0
		} else {
			h.gop = append(h.gop, frag)
		}
	}
	kind := msgFragment
	if keyframe {
		kind = msgKeyframe
	}
	h.send(message{b: frag}, kind)
}
