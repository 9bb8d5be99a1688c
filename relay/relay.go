// Package relay lets any server of a site serve any camera live: the server
// that records a camera streams its frames to a peer that asks, and on the
// asking side a Site source follows the camera from recorder to recorder
// across failovers, so live RTSP viewers and browser views on any server
// keep playing while the camera moves.
//
// Invariants:
//   - A relayed camera costs its recorder one stream per asking server, not
//     one per viewer: a Site keeps one upstream per camera and fans it out.
//   - Make before break: when the camera moves, the new source is opened and
//     the old one is kept until the new one delivers a keyframe, so a move
//     between two live recorders shows no gap.
//   - Nothing here waits on a subscriber: a full subscriber queue loses the
//     frame (its consumer resynchronises at the next keyframe), never delays
//     the recorder or other subscribers.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// Route is the peer endpoint that streams one camera's frames.
const Route = "GET /api/v1/live/frames"

// Source delivers a camera's frames (*recorder.Manager, or a Site).
type Source interface {
	Subscribe(id string, buf int) (<-chan recorder.Frame, func())
	// SubscribeFromKeyframe first delivers the current GOP, so a viewer
	// starts at once.
	SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func())
}

// Handler serves Route from the local recorder: ?camera=ID streams its
// frames as they arrive, from the next keyframe, until the client goes away.
// recording reports whether this server records the camera now; a camera it
// does not record answers 404, so a peer looking for it asks elsewhere.
func Handler(src Source, recording func(id string) bool, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("camera")
		if id == "" {
			http.Error(w, "camera is required", http.StatusBadRequest)
			return
		}
		if !recording(id) {
			http.Error(w, fmt.Sprintf("camera %s is not recorded here", id), http.StatusNotFound)
			return
		}
		frames, cancel := src.SubscribeFromKeyframe(id, 512)
		defer cancel()
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush() //nolint:errcheck
		enc := &encoder{w: w}
		var cur *storage.Stream
		started := false
		for {
			select {
			case <-r.Context().Done():
				return
			case fr, ok := <-frames:
				if !ok {
					return
				}
				if !started {
					if !fr.Startable() {
						continue
					}
					started = true
				}
				// a stuck peer must not hold this goroutine (and the
				// subscription) forever: each write has a deadline
				rc.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				if cur != fr.Stream {
					if err := enc.stream(fr.Stream); err != nil {
						log.Debug("relay write", "camera", id, "err", err)
						return
					}
					cur = fr.Stream
				}
				if err := enc.frame(fr.Sample); err != nil {
					log.Debug("relay write", "camera", id, "err", err)
					return
				}
				if len(frames) == 0 {
					rc.Flush() //nolint:errcheck
				}
			}
		}
	})
}

// Location says where a camera is recorded now.
type Location struct {
	// Server is the recorder's name.
	Server string
	// URL is the recorder's HTTP base URL ("http://10.0.0.12:8080"); empty
	// when Local.
	URL string
	// Local is true when this server records the camera.
	Local bool
}

// Options configures a Site.
type Options struct {
	// Local is this server's recorder.
	Local Source
	// Locate says who records camera id now; ok=false when no live server
	// does (the Site keeps its last source and asks again).
	Locate func(id string) (loc Location, ok bool)
	// Client makes the requests to peers (TLS settings of the site).
	Client *http.Client
	// Authorize adds the peer credentials to a request to a peer.
	Authorize func(*http.Request)
	// Follow is how often an upstream asks Locate again (default 500 ms).
	Follow time.Duration
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Site is a Source for every camera of the site: local cameras come from
// the local recorder, others are relayed from their recorder, following the
// camera when it moves.
type Site struct {
	o   Options
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	ups    map[string]*upstream
	closed bool
}

// NewSite returns a Site; Close stops its upstreams.
func NewSite(o Options) *Site {
	if o.Follow <= 0 {
		o.Follow = 500 * time.Millisecond
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Site{o: o, log: o.Logger, ups: map[string]*upstream{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close ends every subscription and waits for the upstreams. It is
// idempotent; a Subscribe after Close gets a closed channel.
func (s *Site) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Upstreams is the number of cameras relayed or followed now.
func (s *Site) Upstreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ups)
}

// Subscribe delivers camera id's frames wherever it is recorded. The
// channel holds buf frames; a subscriber that falls behind misses frames.
// cancel ends the subscription and closes the channel.
func (s *Site) Subscribe(id string, buf int) (<-chan recorder.Frame, func()) {
	return s.subscribe(id, buf, false)
}

// SubscribeFromKeyframe is Subscribe, delivering the camera's current GOP
// first (when it fits in buf).
func (s *Site) SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func()) {
	return s.subscribe(id, buf, true)
}

func (s *Site) subscribe(id string, buf int, fromKeyframe bool) (<-chan recorder.Frame, func()) {
	if buf < 1 {
		buf = 1
	}
	sub := &subscriber{ch: make(chan recorder.Frame, buf)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(sub.ch)
		return sub.ch, func() {}
	}
	u := s.ups[id]
	if u == nil {
		u = &upstream{site: s, id: id, subs: map[*subscriber]struct{}{}}
		s.ups[id] = u
		s.wg.Add(1)
		go func() { defer s.wg.Done(); u.run() }()
	}
	if gop := u.gop.Frames(); fromKeyframe && len(gop) <= cap(sub.ch) {
		for _, f := range gop {
			sub.ch <- f
		}
	}
	u.subs[sub] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			s.mu.Lock()
			if _, ok := u.subs[sub]; ok {
				delete(u.subs, sub)
				close(sub.ch)
			}
			s.mu.Unlock()
		})
	}
}

type subscriber struct{ ch chan recorder.Frame }

// upstream is one camera followed for this server's subscribers.
type upstream struct {
	site *Site
	id   string
	subs map[*subscriber]struct{} // guarded by site.mu
	gop  recorder.GOP             // guarded by site.mu
}

// source is one open way of getting the camera's frames.
type source struct {
	loc    Location
	frames <-chan recorder.Frame
	stop   func()
}

func (u *upstream) open(loc Location) *source {
	s := u.site
	if loc.Local {
		ch, cancel := s.o.Local.SubscribeFromKeyframe(u.id, 512)
		return &source{loc: loc, frames: ch, stop: cancel}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ch := make(chan recorder.Frame, 512)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		if err := u.pull(ctx, loc, ch); err != nil && ctx.Err() == nil {
			s.log.Debug("relay upstream ended", "camera", u.id, "from", loc.Server, "err", err)
		}
	}()
	return &source{loc: loc, frames: ch, stop: func() { cancel(); <-done }}
}

// pull streams the camera from a peer into ch until the peer ends it.
func (u *upstream) pull(ctx context.Context, loc Location, ch chan<- recorder.Frame) error {
	s := u.site
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.URL+"/api/v1/live/frames?camera="+url.QueryEscape(u.id), nil)
	if err != nil {
		return err
	}
	if s.o.Authorize != nil {
		s.o.Authorize(req)
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", loc.Server, resp.Status)
	}
	dec := newDecoder(resp.Body)
	for {
		fr, err := dec.next()
		if err != nil {
			return err
		}
		select {
		case ch <- fr:
		default: // the upstream loop is behind: lose the frame, not the peer
		}
	}
}

func (u *upstream) publish(fr recorder.Frame) {
	s := u.site
	s.mu.Lock()
	defer s.mu.Unlock()
	u.gop.Add(fr)
	for sub := range u.subs {
		select {
		case sub.ch <- fr:
		default:
		}
	}
}

// idle reports (and, when true, unregisters) an upstream nobody listens to.
func (u *upstream) idle() bool {
	s := u.site
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(u.subs) > 0 {
		return false
	}
	delete(s.ups, u.id)
	return true
}

func (u *upstream) closeSubs() {
	s := u.site
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range u.subs {
		close(sub.ch)
		delete(u.subs, sub)
	}
	if s.ups[u.id] == u {
		delete(s.ups, u.id)
	}
}

// run follows the camera: it keeps one current source, asks Locate every
// Follow, and when the camera has moved opens the new source beside the
// old one, switching at the new one's first keyframe (make before break).
func (u *upstream) run() {
	s := u.site
	defer u.closeSubs()
	tick := time.NewTicker(s.o.Follow)
	defer tick.Stop()
	var cur, next *source
	defer func() {
		for _, src := range []*source{cur, next} {
			if src != nil {
				src.stop()
			}
		}
	}()
	locate := func() {
		loc, ok := s.o.Locate(u.id)
		if !ok {
			return
		}
		if next != nil && next.loc == loc {
			return
		}
		if cur != nil && cur.loc == loc && cur.frames != nil {
			if next != nil { // moved back before the switch: drop the candidate
				next.stop()
				next = nil
			}
			return
		}
		if next != nil {
			next.stop()
		}
		next = u.open(loc)
		if cur == nil {
			cur, next = next, nil
		}
	}
	locate()
	for {
		var curCh, nextCh <-chan recorder.Frame
		if cur != nil {
			curCh = cur.frames
		}
		if next != nil {
			nextCh = next.frames
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			if u.idle() {
				return
			}
			locate()
		case fr, ok := <-curCh:
			if !ok {
				// the recorder went away: keep asking where the camera is
				// (the next tick asks again: a peer that refuses at once
				// must not make this a busy loop)
				cur.stop()
				cur, next = next, nil
				continue
			}
			u.publish(fr)
		case fr, ok := <-nextCh:
			if !ok {
				next.stop()
				next = nil
				continue
			}
			if !fr.Startable() {
				continue
			}
			s.log.Debug("live source moved", "camera", u.id, "from", locName(cur), "to", next.loc.Server)
			if cur != nil {
				cur.stop()
			}
			cur, next = next, nil
			u.publish(fr)
		}
	}
}

func locName(src *source) string {
	if src == nil {
		return ""
	}
	return src.loc.Server
}
