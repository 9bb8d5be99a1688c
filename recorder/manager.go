package recorder

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// ManagerOptions configures a Manager. Zero values take the defaults noted.
type ManagerOptions struct {
	// Sink receives every recorded stream. Required.
	Sink Sink
	// grid is the Manager's, for its pipelines' batched reads (set by
	// NewManager; nil reads unbatched).
	grid *readGrid
	// Logger; nil discards logs.
	Logger *slog.Logger
	// ReadTimeout ends a session whose camera sent nothing (default 5s).
	ReadTimeout time.Duration
	// QueueSize bounds the samples waiting for the writer per camera
	// (default 512, about 10 s of 25 fps video with audio).
	QueueSize int
	// MinBackoff and MaxBackoff bound the reconnect delay (default 1s, 30s).
	MinBackoff, MaxBackoff time.Duration
	// HealthyAfter is how long a session must record before the backoff
	// resets to MinBackoff (default 30s).
	HealthyAfter time.Duration
	// ProbeInterval is how often an offline camera's RTSP port is tried
	// with a TCP connect between attempts, so that a camera that comes
	// back is recorded at once rather than after its backoff (default 1s;
	// negative disables probing).
	ProbeInterval time.Duration
	// StandbyWindow is how far back a hot standby's ring reaches, beyond
	// which it keeps two GOPs more (default 5 s); what it writes on a
	// takeover starts at its first keyframe, at most one of those GOPs
	// in. Set it to at least the failure detection time plus what the
	// home may not have made durable (a part plus a sync interval): what
	// the ring writes then starts at a keyframe at or before the home's
	// last durable footage.
	StandbyWindow time.Duration
	// StandbyMaxBytes bounds one hot standby's ring (default
	// DefaultRingBytes).
	StandbyMaxBytes int
}

func (o *ManagerOptions) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 512
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.HealthyAfter <= 0 {
		o.HealthyAfter = 30 * time.Second
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = time.Second
	}
	if o.StandbyWindow <= 0 {
		o.StandbyWindow = 5 * time.Second
	}
	if o.StandbyMaxBytes <= 0 {
		o.StandbyMaxBytes = DefaultRingBytes
	}
}

// Manager owns the pipelines of all cameras this server records, its own
// and adopted ones.
type Manager struct {
	opts   ManagerOptions
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	pipes  map[string]*Pipeline
	hubs   map[string]*hub
	closed bool
}

// NewManager returns a Manager with no cameras; call Set to start some.
func NewManager(opts ManagerOptions) *Manager {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	opts.grid = &readGrid{}
	return &Manager{opts: opts, ctx: ctx, cancel: cancel, pipes: map[string]*Pipeline{}, hubs: map[string]*hub{}}
}

// Set makes the recorded cameras exactly cams: new ones start, missing ones
// stop, and ones whose URL, Home or Transport changed restart. Cameras that
// did not change keep running untouched. A camera whose Standby alone
// changed keeps its session and changes mode in place (a hot standby
// taken over writes its ring and goes on), unless it is offline: then it
// restarts, so a takeover does not wait out a backoff the standby grew.
// A repeated ID keeps its first entry. Set returns once removed pipelines
// have stopped.
func (m *Manager) Set(cams []Camera) {
	want := make(map[string]Camera, len(cams))
	for _, c := range cams {
		if _, dup := want[c.ID]; dup {
			m.opts.Logger.Warn("duplicate camera id ignored", "camera", c.ID)
			continue
		}
		want[c.ID] = c
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	var stopping []*Pipeline
	for id, p := range m.pipes {
		if c, ok := want[id]; !ok || c.session() != p.cam.session() || (c.Standby != p.standbyMode() && p.Status().State == StateOffline) {
			p.stop()
			stopping = append(stopping, p)
			delete(m.pipes, id)
		}
	}
	for id, c := range want {
		if p, ok := m.pipes[id]; ok {
			p.setStandby(c.Standby)
			continue
		}
		p := newPipeline(c, m.opts, m.hubLocked(id))
		m.pipes[id] = p
		p.start(m.ctx)
	}
	m.mu.Unlock()
	for _, p := range stopping {
		p.wait()
	}
}

// Status returns the status of every camera, sorted by ID.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	pipes := make([]*Pipeline, 0, len(m.pipes))
	for _, p := range m.pipes {
		pipes = append(pipes, p)
	}
	m.mu.Unlock()
	out := make([]Status, len(pipes))
	for i, p := range pipes {
		out[i] = p.Status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close stops every pipeline, waits for them (writers closed) and closes all
// live subscriptions. It is idempotent; Set after Close starts nothing.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	pipes := m.pipes
	m.pipes = map[string]*Pipeline{}
	hubs := m.hubs
	m.hubs = map[string]*hub{}
	m.mu.Unlock()
	m.cancel()
	for _, p := range pipes {
		p.wait()
	}
	for _, h := range hubs {
		h.closeAll()
	}
}

func (m *Manager) hubLocked(id string) *hub {
	h := m.hubs[id]
	if h == nil {
		h = &hub{subs: map[*subscriber]struct{}{}}
		m.hubs[id] = h
	}
	return h
}
