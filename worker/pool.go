package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/storage"
)

// PoolOptions configures a Pool.
type PoolOptions struct {
	// Server, DataDir, Segment and Part are what a worker's storage needs
	// (config name, data_dir, [storage] segment and part) as the
	// supervisor runs them. They are passed to each worker on its command
	// line rather than read from the config file, which may have been
	// edited since: a reload the server refused (or a file broken on
	// disk) must not reach, or stop, a worker restarted later.
	Server, DataDir string
	Segment, Part   time.Duration
	// Binary is the executable workers run (default: this one).
	Binary string
	// Dir holds the workers' sockets, pid files and logs
	// (data_dir/workers; created 0700).
	Dir string
	// PerWorker is how many cameras share a worker (at least 1).
	PerWorker int
	// Store is the supervisor's storage, the only writer of index.db: the
	// workers' index updates are applied to it, and it recovers a dead
	// worker's cameras from their files.
	Store *storage.Store
	// StandbyWindow is the recorder's ManagerOptions.StandbyWindow in
	// every worker (0: the recorder's default).
	StandbyWindow time.Duration
	// SyncMethod is every worker's storage.Options.SyncMethod ("": auto).
	SyncMethod storage.SyncMethod
	// MemoryLimit replaces a worker whose resident memory stays above it
	// (0: no limit).
	MemoryLimit int64
	// Found are workers an earlier supervisor left running (Discover):
	// the pool takes them over.
	Found []Found
	// Heartbeat is how often each worker is asked for its status (default
	// 500 ms); a worker that has not answered for HangAfter (default 2 s)
	// is killed and replaced.
	Heartbeat, HangAfter time.Duration
	// CrashLoop is how many crashes within CrashWindow make a crash loop
	// (default 3 in 60 s): a shared worker's cameras are then split into
	// workers of their own, and a lone camera that goes on crashing its
	// worker is named in an alarm.
	CrashLoop   int
	CrashWindow time.Duration
	// RegroupAfter is how long a camera split out by a crash loop must
	// record alone without a failure before it shares a worker again
	// (default DefaultRegroupAfter); the culprit never does.
	RegroupAfter time.Duration
	// OnStorageAlarm receives the storage alarms a worker's store raised
	// (a full disk, a failed write), as the supervisor's own store would
	// raise them. It must not block.
	OnStorageAlarm func(storage.Alarm)
	// OnNeedSpace is called when a worker's write met a full disk and
	// waits for space: only the supervisor's store can delete. It runs
	// after the batch's index updates are committed, so what the worker
	// closed is deletable. It must not block.
	OnNeedSpace func()
	// ObservePartWrite receives how long each fragment write of a
	// worker took (storage.Options.ObservePartWrite), for the segment
	// write latency metric the in-process recorder feeds directly.
	ObservePartWrite func(time.Duration)
	// Logger; nil discards logs.
	Logger *slog.Logger
	// OnEvent receives what an operator should see (restarts, alarms). It
	// must not block.
	OnEvent func(Event)
}

// EventKind says what happened to a worker.
type EventKind string

// Event kinds raised through PoolOptions.OnEvent.
const (
	// EventRestarted: a worker exited or crashed and was restarted; only
	// its cameras paused.
	EventRestarted EventKind = "restarted"
	// EventHung: a worker stopped answering its heartbeat and was killed
	// and replaced.
	EventHung EventKind = "hung"
	// EventMemory: a worker went over the memory limit and was replaced,
	// make before break (an alarm: something leaks).
	EventMemory EventKind = "memory"
	// EventIsolated: a shared worker kept crashing; each of its cameras
	// now records in a worker of its own, so the culprit shows itself.
	EventIsolated EventKind = "isolated"
	// EventIsolationEnded: the last camera of a split left the
	// configuration; it resolves the split's alarm (see isolationAlarms).
	EventIsolationEnded EventKind = "isolation_ended"
	// EventCulprit: a camera alone in its worker keeps crashing it (an
	// alarm naming the camera); the other cameras are unaffected.
	EventCulprit EventKind = "culprit"
	// EventUpgraded: a worker of another binary was replaced, make before
	// break.
	EventUpgraded EventKind = "upgraded"
)

// Event is one thing that happened to a worker.
type Event struct {
	Kind    EventKind
	Worker  int
	Cameras []string
	Text    string
	// Alarm is true for what an operator must look at.
	Alarm bool
	// Condition, on an alarm that holds until something ends it, names
	// it; Resolves lists the conditions an event ends (see
	// isolationAlarms).
	Condition string
	Resolves  []string
}

// WorkerInfo is one worker's figures, for the API and metrics.
type WorkerInfo struct {
	// Slot numbers the group of cameras; it stays when the process is
	// replaced (ID and PID change).
	Slot     int           `json:"slot"`
	ID       int           `json:"id"`
	PID      int           `json:"pid"`
	Cameras  []string      `json:"cameras"`
	Restarts int           `json:"restarts"`
	RSS      int64         `json:"rss_bytes"`
	CPU      time.Duration `json:"cpu_ns"`
	Isolated bool          `json:"isolated,omitempty"`
}

// Pool records cameras in supervised worker processes, PerWorker cameras
// each. It offers what the server needs of a recorder (Set, Status,
// Subscribe, SubscribeFromKeyframe, Close), so that the rest of the server
// does not know whether a camera records in-process or in a worker.
//
// Invariants:
//   - A camera belongs to at most one group at a time; a group has at
//     most one worker recording, except during a make-before-break
//     replacement, when the new one records before the old one stops:
//     the old one stops once its durable footage reaches
//     control.DefaultHandoffOverlap past the new one's first durable
//     frame (control.Covered, the rule of every move).
//   - The supervisor alone writes index.db: workers send their updates,
//     and a dead worker's cameras are recovered from their files before
//     a new worker writes them.
//   - A worker's failure touches only its group: nothing in the pool
//     waits on one worker while serving another.
//   - A camera is in two groups only while it moves between them (a
//     regroup, p.moving); the group it leaves owns it (byCam, Status)
//     until control.Covered holds, and Set keeps it in both meanwhile.
//   - A crash loop's culprit is never regrouped; the other cameras of a
//     split are, one at a time, once stable for RegroupAfter.
type Pool struct {
	o       PoolOptions
	log     *slog.Logger
	version string
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	upgrade sync.Mutex // one make-before-break replacement at a time

	commitMu   sync.Mutex // guards pending and committing (see commit)
	pending    []commitReq
	committing bool

	mu        sync.Mutex
	groups    []*group
	byCam     map[string]*group
	isolated  map[string]bool        // cameras that record alone after a crash loop
	isoAlarms isolationAlarms        // the open worker.isolated alarms
	moving    map[string]regroupMove // cameras in two groups during a regroup
	nextID    int                    // next worker number
	nextSlot  int                    // next group number
	closed    bool
	followUp  time.Duration // followUpPoll; a test sets it longer
}

// newGroupLocked returns an empty group with the next slot number.
func (p *Pool) newGroupLocked() *group {
	p.nextSlot++
	return &group{slot: p.nextSlot, kick: make(chan struct{}, 1), created: time.Now()}
}

// group is a set of cameras that record in one worker process.
type group struct {
	slot int           // stable number of the group, the metrics' worker label
	kick chan struct{} // cameras changed
	// guarded by Pool.mu
	cams     []recorder.Camera
	gen      uint64 // bumped when cams change
	proc     *proc
	status   map[string]recorder.Status
	restarts int
	crashes  []time.Time
	culprit  bool      // the crash-loop alarm was raised
	lastMem  time.Time // the last replacement over the memory limit
	stat     procStat
	removed  bool
	created  time.Time // when the group was made (a split makes new ones)
	idx      *indexer  // the indexer of proc, for moves (regroup)
	// regroupFailed is when a move out of this group last gave up
	regroupFailed time.Time
}

// NewPool starts a pool; with Found it takes over those workers at once.
func NewPool(o PoolOptions) (*Pool, error) {
	if o.Store == nil || o.Dir == "" || o.Server == "" || o.DataDir == "" || o.Segment <= 0 || o.Part <= 0 {
		return nil, errors.New("worker pool: Store, Dir, Server, DataDir, Segment and Part are required")
	}
	if o.PerWorker < 1 {
		o.PerWorker = 1
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("worker pool: %w", err)
		}
		o.Binary = exe
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 500 * time.Millisecond
	}
	if o.HangAfter <= 0 {
		o.HangAfter = 2 * time.Second
	}
	if o.CrashLoop <= 0 {
		o.CrashLoop = 3
	}
	if o.CrashWindow <= 0 {
		o.CrashWindow = time.Minute
	}
	if o.RegroupAfter <= 0 {
		o.RegroupAfter = regroupAfter()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	if o.ObservePartWrite == nil {
		o.ObservePartWrite = func(time.Duration) {}
	}
	if o.OnNeedSpace == nil {
		o.OnNeedSpace = func() {}
	}
	if o.OnStorageAlarm == nil {
		o.OnStorageAlarm = func(storage.Alarm) {}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("worker pool: %w", err)
	}
	p := &Pool{o: o, log: o.Logger, version: BinaryVersion(), byCam: map[string]*group{}, isolated: map[string]bool{}, moving: map[string]regroupMove{}, nextID: 1, followUp: followUpPoll}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, f := range o.Found {
		p.nextID = max(p.nextID, f.Hello.ID+1)
	}
	p.mu.Lock()
	for _, f := range o.Found {
		g := p.newGroupLocked()
		g.proc = f.proc
		for _, id := range f.Hello.Cameras {
			if p.byCam[id] == nil {
				g.cams = append(g.cams, recorder.Camera{ID: id})
				p.byCam[id] = g
			}
		}
		p.log.Info("taking over worker left by the previous supervisor", "worker", f.Hello.ID, "pid", f.Hello.PID, "cameras", len(g.cams))
		p.groups = append(p.groups, g)
		p.startLocked(g, f.proc)
	}
	p.mu.Unlock()
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.regroupLoop() }()
	return p, nil
}

func (p *Pool) startLocked(g *group, attached *proc) {
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.supervise(g, attached) }()
}

// Set makes the recorded cameras exactly cams. A camera keeps its worker
// while it stays; new cameras fill workers with room, else start one;
// a camera marked isolated (crash loop) gets a worker of its own. Set
// does not wait for workers to start.
func (p *Pool) Set(cams []recorder.Camera) {
	want := make(map[string]recorder.Camera, len(cams))
	order := make([]string, 0, len(cams))
	for _, c := range cams {
		if _, dup := want[c.ID]; dup {
			continue
		}
		want[c.ID] = c
		order = append(order, c.ID)
	}
	var evs []Event
	defer func() { // after the unlock below
		for _, e := range evs {
			p.o.OnEvent(e)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for id := range p.isoAlarms.of {
		if _, stays := want[id]; !stays {
			if cond := p.isoAlarms.settle(id); cond != "" {
				evs = append(evs, Event{Kind: EventIsolationEnded, Cameras: []string{id}, Resolves: []string{cond}, Text: fmt.Sprintf(
					"camera %s is no longer recorded here: the cameras of its crash loop are all accounted for", id)})
			}
		}
	}
	p.byCam = make(map[string]*group, len(want))
	kept := make([]*group, 0, len(p.groups))
	for _, g := range p.groups {
		next := make([]recorder.Camera, 0, len(g.cams))
		for _, c := range g.cams {
			nc, ok := want[c.ID]
			mv, moving := p.moving[c.ID]
			switch {
			case !ok:
				continue
			case moving && (g == mv.from || g == mv.to):
				// in both during its make-before-break move (regroup);
				// the group it leaves owns it until the move is done
				if g == mv.from {
					p.byCam[c.ID] = g
				}
			case p.byCam[c.ID] != nil:
				continue
			default:
				p.byCam[c.ID] = g
			}
			next = append(next, nc)
		}
		p.update(g, next)
		if len(next) > 0 {
			kept = append(kept, g)
		} else {
			g.removed = true
		}
	}
	p.groups = kept
	for _, id := range order {
		if p.byCam[id] != nil {
			continue
		}
		var g *group
		if !p.isolated[id] {
			for _, cand := range p.groups {
				if len(cand.cams) < p.o.PerWorker && !p.isolatedGroup(cand) {
					g = cand
					break
				}
			}
		}
		if g == nil {
			g = p.newGroupLocked()
			p.groups = append(p.groups, g)
			p.startLocked(g, nil)
		}
		p.update(g, append(slices.Clone(g.cams), want[id]))
		p.byCam[id] = g
	}
}

func (p *Pool) isolatedGroup(g *group) bool {
	for _, c := range g.cams {
		if p.isolated[c.ID] {
			return true
		}
	}
	return false
}

// CutSegments asks every worker to close its open segments at the next
// keyframe (see storage.Options.OnCut): the supervisor's retention found
// nothing else to delete on a full disk. It does not wait for the
// answers.
func (p *Pool) CutSegments() {
	p.mu.Lock()
	var ws []*proc
	for _, g := range p.groups {
		if g.proc != nil && g.proc.alive() {
			ws = append(ws, g.proc)
		}
	}
	p.mu.Unlock()
	for _, w := range ws {
		go func() {
			req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, base+"/cut", nil)
			if err == nil {
				if err := w.do(w.api, req, nil); err != nil {
					p.log.Warn("ask worker to cut its segments", "worker", w.id, "err", err)
				}
			}
		}()
	}
}

// workerArgs are the flags a worker gets beside its config and socket.
func (p *Pool) workerArgs() []string {
	args := []string{"-server", p.o.Server, "-data-dir", p.o.DataDir, "-segment", p.o.Segment.String(), "-part", p.o.Part.String()}
	if p.o.StandbyWindow > 0 {
		args = append(args, "-standby-window", p.o.StandbyWindow.String())
	}
	if m := p.o.SyncMethod; m != "" && m != storage.SyncAuto {
		args = append(args, "-sync-method", string(m))
	}
	return args
}

// update sets g's cameras (p.mu held) and wakes its supervisor if they
// changed.
func (p *Pool) update(g *group, cams []recorder.Camera) {
	if slices.Equal(g.cams, cams) {
		return
	}
	g.cams = cams
	g.gen++
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Status returns the status of every camera, sorted by ID: as its worker
// last reported it, or connecting while its worker (re)starts.
func (p *Pool) Status() []recorder.Status {
	p.mu.Lock()
	out := make([]recorder.Status, 0, len(p.byCam))
	for _, g := range p.groups {
		for _, c := range g.cams {
			if p.byCam[c.ID] != g {
				continue // the camera's other worker during a move (regroup)
			}
			if st, ok := g.status[c.ID]; ok {
				out = append(out, st)
				continue
			}
			out = append(out, recorder.Status{ID: c.ID, Home: c.Home, State: recorder.StateConnecting})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b recorder.Status) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Workers reports every worker's figures.
func (p *Pool) Workers() []WorkerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]WorkerInfo, 0, len(p.groups))
	for _, g := range p.groups {
		wi := WorkerInfo{Slot: g.slot, Restarts: g.restarts, RSS: g.stat.rss, CPU: g.stat.cpu, Isolated: p.isolatedGroup(g)}
		if g.proc != nil {
			wi.ID, wi.PID = g.proc.id, g.proc.pid
		}
		for _, c := range g.cams {
			wi.Cameras = append(wi.Cameras, c.ID)
		}
		out = append(out, wi)
	}
	return out
}

// Subscribe delivers camera id's frames from its worker, over the socket,
// for live viewing. The channel holds buf frames and a subscriber that
// falls behind misses frames, so a stalled viewer never holds up a
// worker. When the camera's worker dies the subscription waits for its
// replacement and goes on. cancel ends it.
func (p *Pool) Subscribe(id string, buf int) (<-chan recorder.Frame, func()) {
	return p.subscribe(id, buf)
}

// SubscribeFromKeyframe is Subscribe: a worker's stream always starts
// with the camera's current GOP.
func (p *Pool) SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func()) {
	return p.subscribe(id, buf)
}

func (p *Pool) subscribe(id string, buf int) (<-chan recorder.Frame, func()) {
	ch := make(chan recorder.Frame, max(buf, 1))
	ctx, cancel := context.WithCancel(p.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for ctx.Err() == nil {
			if w := p.procOf(id); w != nil {
				err := relay.Pull(ctx, w.stream, base, id, nil, ch)
				if ctx.Err() == nil {
					p.log.Debug("live stream from worker ended", "camera", id, "worker", w.id, "err", err)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}

func (p *Pool) procOf(id string) *proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.byCam[id]
	if g == nil || g.proc == nil || !g.proc.alive() {
		return nil
	}
	return g.proc
}

// Close stops every worker cleanly (cameras stopped, segments closed and
// indexed) and waits for them.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// ending says why supervise stops watching a worker.
type ending int

const (
	endStop    ending = iota // the pool closes or the group emptied: stop it cleanly
	endCrash                 // the process exited
	endHang                  // the heartbeat went unanswered: kill it
	endMemory                // over the memory limit: replace it
	endUpgrade               // another binary: replace it
)

// supervise runs group g's worker for as long as the group has cameras:
// it starts (or takes over) the process, watches it, and replaces it when
// it dies, hangs or must be replaced.
func (p *Pool) supervise(g *group, w *proc) {
	var idx *indexer
	if w != nil {
		idx = p.index(w, 0)
		p.setIndexer(g, idx)
	}
	for {
		if w == nil {
			w = p.start(g)
			if w == nil {
				return // the pool closes or the group emptied
			}
			idx = p.index(w, 0)
			p.setIndexer(g, idx)
		}
		why := p.watch(g, w)
		switch why {
		case endStop:
			p.stop(g, w, idx, true)
			return
		case endMemory, endUpgrade:
			if nw, after := p.replace(g, w, idx, why); nw != nil {
				w, idx = nw, p.index(nw, after)
				p.setIndexer(g, idx)
				continue
			}
			// the replacement failed to start: keep the old one
			continue
		}
		// crashed or hung: kill, index what it wrote, restart
		w.kill()
		select {
		case <-w.exited:
		case <-time.After(5 * time.Second):
			p.log.Error("worker does not die after SIGKILL", "worker", w.id, "pid", w.pid)
		}
		idx.end()
		w.close()
		cams := p.forget(g, w)
		if err := p.o.Store.RecoverCameras(cams); err != nil {
			p.log.Error("index a dead worker's files", "worker", w.id, "err", err)
		}
		kind, what := EventRestarted, "exited"
		if why == endHang {
			kind, what = EventHung, fmt.Sprintf("did not answer for %v (killed)", p.o.HangAfter)
		} else if w.cmd != nil && w.cmd.ProcessState != nil {
			what = "exited: " + w.cmd.ProcessState.String()
		}
		w = nil
		delay, split := p.crashed(g, kind, what, cams)
		if split {
			return
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// setIndexer notes idx as the indexer of g's worker.
func (p *Pool) setIndexer(g *group, idx *indexer) {
	p.mu.Lock()
	g.idx = idx
	p.mu.Unlock()
}

// forget drops w from g after it died and returns g's camera ids.
func (p *Pool) forget(g *group, w *proc) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g.proc == w {
		g.proc = nil
		g.status = nil
	}
	ids := make([]string, 0, len(g.cams))
	for _, c := range g.cams {
		ids = append(ids, c.ID)
	}
	return ids
}

// crashed counts a crash of g's worker and decides what follows: the
// delay before the restart (none for the first crash in the window, then
// doubling up to 30 s), or, on a crash loop of a shared worker, a split
// of its cameras into workers of their own (split: g is gone).
func (p *Pool) crashed(g *group, kind EventKind, what string, cams []string) (delay time.Duration, split bool) {
	var evs []Event
	defer func() {
		for _, e := range evs {
			p.o.OnEvent(e)
		}
	}()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	g.restarts++
	g.crashes = append(g.crashes, now)
	for len(g.crashes) > 0 && now.Sub(g.crashes[0]) > p.o.CrashWindow {
		g.crashes = g.crashes[1:]
	}
	n := len(g.crashes)
	text := fmt.Sprintf("worker of %s %s; restarting it (its cameras pause, the others record on)", strings.Join(cams, ", "), what)
	p.log.Warn("worker failed", "cameras", cams, "what", what, "crashes_in_window", n)
	evs = append(evs, Event{Kind: kind, Cameras: cams, Text: text, Alarm: kind == EventHung})
	if n >= p.o.CrashLoop && len(g.cams) > 1 && !p.closed && !g.removed {
		// split: every camera alone, so that the culprit crashes only
		// its own worker and shows itself
		for _, c := range g.cams {
			p.isolated[c.ID] = true
		}
		p.groups = slices.DeleteFunc(p.groups, func(x *group) bool { return x == g })
		g.removed = true
		for _, c := range g.cams {
			ng := p.newGroupLocked()
			ng.cams, ng.gen = []recorder.Camera{c}, 1
			p.groups = append(p.groups, ng)
			p.byCam[c.ID] = ng
			p.startLocked(ng, nil)
		}
		cond, resolves := p.isoAlarms.open(cams)
		evs = append(evs, Event{Kind: EventIsolated, Cameras: cams, Alarm: true, Condition: cond, Resolves: resolves, Text: fmt.Sprintf(
			"the worker of %s crashed %d times in %v: each of these cameras now records in a worker of its own, so that the one at fault crashes only itself",
			strings.Join(cams, ", "), n, p.o.CrashWindow)})
		return 0, true
	}
	if n >= p.o.CrashLoop && len(g.cams) == 1 && !g.culprit {
		g.culprit = true
		var resolves []string
		if cond := p.isoAlarms.settle(cams[0]); cond != "" {
			resolves = []string{cond} // the others share workers again
		}
		evs = append(evs, Event{Kind: EventCulprit, Cameras: cams, Alarm: true, Resolves: resolves, Text: fmt.Sprintf(
			"camera %s crashes the worker that records it (%d times in %v): it records alone in its own worker, restarted with backoff; no other camera is affected",
			cams[0], n, p.o.CrashWindow)})
	}
	if n <= 1 {
		return 0, false
	}
	return min(time.Second<<(n-2), 30*time.Second), false
}

// start spawns a worker for g and gives it g's cameras, retrying with
// backoff; nil when the pool closes or g emptied first.
func (p *Pool) start(g *group) *proc {
	backoff := 500 * time.Millisecond
	for {
		p.mu.Lock()
		if p.closed || g.removed || len(g.cams) == 0 {
			p.mu.Unlock()
			return nil
		}
		id := p.nextID
		p.nextID++
		p.mu.Unlock()
		w, err := spawn(p.ctx, p.o.Binary, p.o.Dir, id, p.workerArgs()...)
		if err == nil {
			p.mu.Lock()
			g.proc = w
			p.mu.Unlock()
			p.log.Info("worker started", "worker", id, "pid", w.pid)
			return w
		}
		if p.ctx.Err() != nil {
			return nil
		}
		p.log.Error("start worker", "err", err)
		select {
		case <-p.ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// watch gives w its cameras and heartbeats it until it must go.
func (p *Pool) watch(g *group, w *proc) ending {
	var sent uint64
	lastOK := time.Now()
	p.mu.Lock()
	lastMem := g.lastMem
	p.mu.Unlock()
	over := 0
	tick := time.NewTicker(p.o.Heartbeat)
	defer tick.Stop()
	// followUps are polls left at followUpPoll before the ticker goes back
	// to the heartbeat: after the worker was given cameras (a takeover, a
	// standby that now records, a camera moved in) their new states are
	// what the page, the PSIM's notice and the next move's
	// make-before-break wait for, and a heartbeat later is up to half a
	// second late for all of them.
	followUps := 0
	// pollNow: the cameras were just given, so their states are asked at
	// once: a PUT /cameras has applied them when it answers (a hot
	// standby taken over is recording, a camera gone is gone), and the
	// page and the PSIM's notice need not wait for the first follow-up
	pollNow := false
	var st []recorder.Status // handed back to each heartbeat to fill
	for {
		p.mu.Lock()
		cams, gen, removed := slices.Clone(g.cams), g.gen, g.removed
		p.mu.Unlock()
		if removed || len(cams) == 0 {
			return endStop
		}
		// a worker taken over keeps what it records until Set gives
		// the cameras in full (gen 0 holds only their ids)
		if sent != gen {
			if err := w.setCameras(p.ctx, cams); err != nil {
				if p.ctx.Err() != nil {
					return endStop
				}
				p.log.Warn("give worker its cameras", "worker", w.id, "err", err)
			} else {
				sent = gen
				if followUps == 0 {
					tick.Reset(p.followUp)
				}
				followUps = followUpPolls
				pollNow = true
			}
		}
		if !pollNow {
			select {
			case <-p.ctx.Done():
				return endStop
			case <-w.exited:
				return endCrash
			case <-g.kick:
				continue
			case <-tick.C:
				if followUps > 0 {
					if followUps--; followUps == 0 {
						tick.Reset(p.o.Heartbeat)
					}
				}
			}
		}
		pollNow = false
		hctx, cancel := context.WithTimeout(p.ctx, p.o.HangAfter)
		got, err := w.status(hctx, st)
		cancel()
		if p.ctx.Err() != nil {
			return endStop
		}
		if !w.alive() {
			return endCrash
		}
		if err != nil {
			if time.Since(lastOK) >= p.o.HangAfter {
				return endHang
			}
			continue
		}
		st, lastOK = got, time.Now()
		ps, _ := readStat(w.pid)
		p.mu.Lock()
		// the map is g's alone and read under p.mu only: refilled, not
		// made again, at every heartbeat
		if g.status == nil {
			g.status = make(map[string]recorder.Status, len(st))
		}
		clear(g.status)
		for _, s := range st {
			g.status[s.ID] = s
		}
		g.stat = ps
		p.mu.Unlock()
		// a replacement needs the cameras in full: a worker taken over
		// waits for the first Set (gen 0 holds only their ids)
		if p.o.MemoryLimit > 0 && ps.rss > p.o.MemoryLimit {
			// not one spike: three heartbeats in a row; and at most one
			// replacement per crash window, so that a limit below what
			// the cameras need does not replace the worker every second
			if over++; over >= 3 && gen > 0 && time.Since(lastMem) > p.o.CrashWindow {
				return endMemory
			}
		} else {
			over = 0
		}
		if w.version != p.version && gen > 0 {
			return endUpgrade
		}
	}
}

// followUpPolls status polls, followUpPoll apart, follow each change of
// a worker's cameras (see watch), after one at once: they cover the first
// half second (a hot standby's writer marks its takeover once its ring
// is written, tens of milliseconds after the order when twenty take over
// at once; a cold camera's first keyframe comes later), the heartbeat the
// rest.
const (
	followUpPolls = 10
	followUpPoll  = 50 * time.Millisecond
)

// replace starts a new worker for g beside w, waits until its durable
// footage overlaps w's by control.Covered (or 15 s after it started its
// cameras, and 15 s more), then stops w: make before break, by the one
// rule every move of a camera applies. It returns the new worker, or nil
// when none could be started (w then goes on).
func (p *Pool) replace(g *group, w *proc, idx *indexer, why ending) (*proc, uint64) {
	p.upgrade.Lock()
	defer p.upgrade.Unlock()
	p.mu.Lock()
	cams := slices.Clone(g.cams)
	id := p.nextID
	p.nextID++
	p.mu.Unlock()
	nw, err := spawn(p.ctx, p.o.Binary, p.o.Dir, id, p.workerArgs()...)
	if err != nil {
		p.log.Error("start replacement worker", "worker", w.id, "err", err)
		return nil, 0
	}
	nidx := p.index(nw, 0)
	if err := nw.setCameras(p.ctx, cams); err != nil {
		p.log.Error("give replacement worker its cameras", "worker", nw.id, "err", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && p.ctx.Err() == nil {
		st, err := nw.status(p.ctx, nil)
		if err == nil && allStarted(st, cams) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Make before break, by the rule every move applies
	// (control.Covered): w stops only when, for each camera it records,
	// its durable footage reaches the overlap past the new worker's
	// first durable frame. A camera that allows one session only never
	// gets there: after the deadline w stops regardless, and the new
	// worker connects once the session is free.
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && p.ctx.Err() == nil && !p.covered(g, cams, idx, nidx) {
		time.Sleep(100 * time.Millisecond)
	}
	after := nidx.end() // supervise goes on from here
	p.mu.Lock()
	ps := g.stat
	g.proc = nw
	if why == endMemory {
		g.lastMem = time.Now()
	}
	p.mu.Unlock()
	p.stop(g, w, idx, false)
	ids := make([]string, len(cams))
	for i, c := range cams {
		ids[i] = c.ID
	}
	if why == endMemory {
		p.o.OnEvent(Event{Kind: EventMemory, Worker: w.id, Cameras: ids, Alarm: true, Text: fmt.Sprintf(
			"worker %d (%s) used %d MiB, over the %d MiB limit: replaced by worker %d, make before break",
			w.id, strings.Join(ids, ", "), ps.rss>>20, p.o.MemoryLimit>>20, nw.id)})
	} else {
		p.o.OnEvent(Event{Kind: EventUpgraded, Worker: w.id, Cameras: ids, Text: fmt.Sprintf(
			"worker %d ran another build (%s): replaced by worker %d of this one (%s), make before break", w.id, w.version, nw.id, p.version)})
	}
	return nw, after
}

// covered reports whether the new worker's footage (nidx) of every
// camera the old one records (idx) overlaps the old one's.
func (p *Pool) covered(g *group, cams []recorder.Camera, idx, nidx *indexer) bool {
	p.mu.Lock()
	recording := map[string]bool{}
	for _, c := range cams {
		recording[c.ID] = g.status[c.ID].State == recorder.StateRecording
	}
	p.mu.Unlock()
	for _, c := range cams {
		if recording[c.ID] && !control.Covered(idx.footageOf(c.ID), nidx.footageOf(c.ID).From, control.DefaultHandoffOverlap) {
			return false
		}
	}
	return true
}

// allStarted reports whether every camera of cams has left connecting:
// recording, or offline for a reason of the camera's own.
func allStarted(st []recorder.Status, cams []recorder.Camera) bool {
	by := map[string]string{}
	for _, s := range st {
		by[s.ID] = s.State
	}
	for _, c := range cams {
		if s := by[c.ID]; s != recorder.StateRecording && s != recorder.StateOffline {
			return false
		}
	}
	return true
}

// stop stops w cleanly: its cameras stop, its segments are closed and
// synced, and its last index updates are applied. A worker that does not
// answer is killed; its cameras are then recovered from their files
// unless another worker already records them (recover false).
func (p *Pool) stop(g *group, w *proc, idx *indexer, recover bool) {
	after := idx.end()
	b, err := w.stop(context.Background(), after)
	if err == nil {
		p.apply(w, b, idx)
	}
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		err = errors.Join(err, errors.New("did not exit"))
	}
	if err != nil {
		p.log.Error("worker did not stop cleanly: killed", "worker", w.id, "err", err)
		w.kill()
		if recover {
			p.mu.Lock()
			ids := make([]string, 0, len(g.cams))
			for _, c := range g.cams {
				ids = append(ids, c.ID)
			}
			p.mu.Unlock()
			<-w.exited
			if err := p.o.Store.RecoverCameras(ids); err != nil {
				p.log.Error("index a killed worker's files", "worker", w.id, "err", err)
			}
		}
	}
	os.Remove(pidFile(w.socket)) //nolint:errcheck
	w.close()
	p.log.Info("worker stopped", "worker", w.id)
}

// indexer applies one worker's index updates to the store as they come.
type indexer struct {
	cancel context.CancelFunc
	done   chan struct{}
	after  uint64 // the last update applied; read after done
	// alarmed is the sequence of the last storage alarm raised
	alarmed uint64

	mu sync.Mutex
	// footage is, per camera, what this worker has made durable and the
	// index holds: the first frame of its first segment and the end of
	// its newest part, for the make-before-break test of a replacement.
	footage map[string]control.Footage
}

// note records the footage of updates the index has committed.
func (ix *indexer) note(us []storage.IndexUpdate) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, u := range us {
		if u.Delete || u.End <= u.Start {
			continue
		}
		if ix.footage == nil {
			ix.footage = map[string]control.Footage{}
		}
		f := ix.footage[u.Camera]
		from, to := time.Unix(0, u.Start), time.Unix(0, u.End)
		if f.From.IsZero() || from.Before(f.From) {
			f.From = from
		}
		if to.After(f.To) {
			f.To = to
		}
		ix.footage[u.Camera] = f
	}
}

// footageOf is camera id's durable footage from this worker.
func (ix *indexer) footageOf(id string) control.Footage {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.footage[id]
}

// end stops the indexer and returns the sequence of the last update it
// applied.
func (ix *indexer) end() uint64 {
	ix.cancel()
	<-ix.done
	return ix.after
}

func (p *Pool) index(w *proc, after uint64) *indexer {
	ctx, cancel := context.WithCancel(p.ctx)
	ix := &indexer{cancel: cancel, done: make(chan struct{}), after: after}
	go func() {
		defer close(ix.done)
		for ctx.Err() == nil {
			b, err := w.index(ctx, ix.after)
			if err != nil {
				if ctx.Err() != nil || !w.alive() {
					return
				}
				select {
				case <-ctx.Done():
				case <-w.exited:
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			if p.apply(w, b, ix) {
				ix.after = b.Next
				continue
			}
			select { // the index refused them (a full disk): again soon
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return ix
}

// apply commits a batch of w's updates; false when the index refused
// them (they are asked for again). It raises the batch's storage alarms
// numbered after ix.alarmed, advances it, and notes the footage committed.
func (p *Pool) apply(w *proc, b Batch, ix *indexer) bool {
	alarmed := &ix.alarmed
	if b.Lost {
		p.log.Error("a worker dropped index updates while no supervisor listened; its files stay the truth and are indexed when it is replaced", "worker", w.id)
	}
	if len(b.Updates) == 0 {
		return true
	}
	us := make([]storage.IndexUpdate, 0, len(b.Updates))
	var alarms []storage.Alarm
	var writes []time.Duration
	needSpace := false
	first := b.Next - uint64(len(b.Updates)) + 1 // sequence of b.Updates[0]
	for i, raw := range b.Updates {
		var u queued
		if err := json.Unmarshal(raw, &u); err != nil {
			p.log.Error("undecodable index update from worker", "worker", w.id, "err", err)
			continue
		}
		if u.Alarm != nil || u.NeedSpace {
			// raised at once, and once: a full disk may be exactly
			// what makes the commit below fail and the batch come again
			if seq := first + uint64(i); seq > *alarmed {
				if u.Alarm != nil {
					alarms = append(alarms, *u.Alarm)
				}
				needSpace = needSpace || u.NeedSpace
				*alarmed = seq
			}
			continue
		}
		if u.PartWrites != nil {
			writes = append(writes, u.PartWrites...)
			continue
		}
		us = append(us, u.IndexUpdate)
	}
	for _, a := range alarms {
		p.o.OnStorageAlarm(a)
	}
	if len(us) > 0 {
		err := p.commit(us)
		if err == nil {
			ix.note(us)
		}
		if needSpace {
			// after the commit, so that what the worker closed can
			// go; and even when it failed, since a full disk may be
			// why (retention can delete without the batch)
			p.o.OnNeedSpace()
		}
		if err != nil {
			p.log.Error("apply worker index updates", "worker", w.id, "err", err)
			return false
		}
	} else if needSpace {
		p.o.OnNeedSpace()
	}
	// observed once the batch is applied (a refused batch comes again)
	for _, d := range writes {
		p.o.ObservePartWrite(d)
	}
	return true
}

// commitWindow is how long the first of concurrent batches waits for the
// other workers' rounds to join its transaction.
const commitWindow = 50 * time.Millisecond

// commitReq is one worker's batch waiting for the group commit.
type commitReq struct {
	us   []storage.IndexUpdate
	done chan error
}

// commit applies us to the store in a group commit: the workers' sync
// rounds arrive at about the same time each part, and one bbolt
// transaction (one fsync) for all of them costs what the in-process
// recorder's one round costs, instead of one per worker.
func (p *Pool) commit(us []storage.IndexUpdate) error {
	req := commitReq{us: us, done: make(chan error, 1)}
	p.commitMu.Lock()
	p.pending = append(p.pending, req)
	if p.committing {
		p.commitMu.Unlock()
		return <-req.done
	}
	p.committing = true
	p.commitMu.Unlock()
	time.Sleep(commitWindow)
	for {
		p.commitMu.Lock()
		batch := p.pending
		p.pending = nil
		if len(batch) == 0 {
			p.committing = false
			p.commitMu.Unlock()
			break
		}
		p.commitMu.Unlock()
		var all []storage.IndexUpdate
		for _, r := range batch {
			all = append(all, r.us...)
		}
		err := p.o.Store.Apply(all)
		for _, r := range batch {
			r.done <- err
		}
	}
	return <-req.done
}
