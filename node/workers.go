package node

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/worker"
)

// cameraRecorder is what the node needs of its recorder: a
// *recorder.Manager records in this process, a *worker.Pool in supervised
// worker processes ([recorder] cameras_per_worker). Nothing else in the
// node knows which.
type cameraRecorder interface {
	Set([]recorder.Camera)
	Status() []recorder.Status
	Subscribe(id string, buf int) (<-chan recorder.Frame, func())
	SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func())
	Close()
}

// workersDir holds the worker processes' sockets, pid files and logs.
func (n *Node) workersDir() string { return filepath.Join(n.cfg.DataDir, "workers") }

// findWorkers looks for workers a previous supervisor left recording (it
// crashed); their cameras stay out of storage recovery, which would
// otherwise repair files they still write.
func (n *Node) findWorkers() (found []worker.Found, skip func(camera string) bool) {
	if n.cfg.Recorder.CamerasPerWorker <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found = worker.Discover(ctx, n.workersDir())
	if len(found) == 0 {
		return nil, nil
	}
	live := map[string]bool{}
	for _, f := range found {
		for _, id := range f.Hello.Cameras {
			live[id] = true
		}
	}
	return found, func(camera string) bool { return live[camera] }
}

// newRecorder chooses where cameras record: in this process, or in
// worker processes taking over found.
func (n *Node) newRecorder(found []worker.Found) (cameraRecorder, error) {
	c := n.cfg
	n.resolveStaleIsolations()
	if c.Recorder.CamerasPerWorker <= 0 {
		return recorder.NewManager(recorder.ManagerOptions{
			Sink:          storeSink{n.store},
			Logger:        n.log.With("part", "recorder"),
			StandbyWindow: standbyWindow(c.Cluster.FailoverAfter, c.Cluster.Keepalive, c.Storage.Part),
		}), nil
	}
	pool, err := worker.NewPool(worker.PoolOptions{
		Server:        c.Name,
		DataDir:       c.DataDir,
		Segment:       c.Storage.Segment,
		Part:          c.Storage.Part,
		Dir:           n.workersDir(),
		PerWorker:     c.Recorder.CamerasPerWorker,
		StandbyWindow: standbyWindow(c.Cluster.FailoverAfter, c.Cluster.Keepalive, c.Storage.Part),
		SyncMethod:    storage.SyncMethod(c.Storage.SyncMethod),
		Store:         n.store,
		MemoryLimit:   workerMemory(c.Recorder.WorkerMemory, c.Recorder.CamerasPerWorker),
		Found:         found,
		Logger:        n.log.With("part", "workers"),
		OnEvent:       n.onWorkerEvent,
		// a worker's storage alarms are this server's, and its full
		// disk is this server's to free: retention runs here
		OnStorageAlarm:   n.onWorkerStorageAlarm,
		OnNeedSpace:      n.store.RequestSpace,
		ObservePartWrite: n.metrics.ObserveSegmentWrite,
	})
	if err != nil {
		return nil, err
	}
	n.workers.Store(pool)
	if err := n.metrics.Registry().Register(pool); err != nil {
		n.log.Warn("worker metrics", "err", err)
	}
	return pool, nil
}

// cutWorkerSegments passes the store's retention's request that open
// segments be cut on to the workers, which write them (it runs on the
// store's goroutine, hence n.workers rather than n.rec).
func (n *Node) cutWorkerSegments() {
	if p := n.workers.Load(); p != nil {
		p.CutSegments()
	}
}

// workersAnswer is GET /api/v1/workers.
type workersAnswer struct {
	// InProcess is true when cameras record in the server's own process
	// ([recorder] cameras_per_worker = 0).
	InProcess bool                `json:"in_process"`
	Workers   []worker.WorkerInfo `json:"workers"`
}

// serveWorkers reports each worker process: its cameras, restarts,
// memory and CPU.
func (n *Node) serveWorkers(w http.ResponseWriter, r *http.Request) {
	ans := workersAnswer{InProcess: true, Workers: []worker.WorkerInfo{}}
	if p, ok := n.rec.(*worker.Pool); ok {
		ans.InProcess, ans.Workers = false, p.Workers()
	}
	writeJSON(w, http.StatusOK, ans)
}

// workerMemory is [recorder] worker_memory, or its default: a base for the
// Go runtime and the worker's buffers plus a generous allowance per camera
// (writer queue of 512 samples and a GOP cache at high bitrates).
func workerMemory(set int64, perWorker int) int64 {
	if set > 0 {
		return set
	}
	return 128<<20 + int64(perWorker)*48<<20
}

// resolveStaleIsolations resolves the worker.isolated alarms a previous
// run of the server left open: a new recorder starts with no camera held
// apart (a crash loop that goes on splits its worker again, with a new
// alarm), and nothing else would ever resolve them.
func (n *Node) resolveStaleIsolations() {
	conds, err := n.events.OpenConditions(worker.IsolationCondition(nil))
	if err != nil {
		n.log.Warn("open worker.isolated alarms", "err", err)
		return
	}
	if len(conds) == 0 {
		return
	}
	n.appendEvent(events.Event{Server: n.cfg.Name, Type: events.TypeAlarmResolved, Severity: events.SeverityInfo, Resolves: conds,
		Text: "the server restarted: cameras a crash loop had split into workers of their own are grouped as configured again"})
}

// onWorkerEvent records what happened to a worker in the event log (and
// so to the PSIM).
func (n *Node) onWorkerEvent(e worker.Event) {
	typ := map[worker.EventKind]events.Type{
		worker.EventRestarted: events.TypeWorkerRestarted,
		worker.EventHung:      events.TypeWorkerHung,
		worker.EventMemory:    events.TypeWorkerMemory,
		worker.EventIsolated:  events.TypeWorkerIsolated,
		worker.EventCulprit:   events.TypeWorkerCrashLoop,
		worker.EventUpgraded:  events.TypeWorkerUpgraded,
		worker.EventRegrouped: events.TypeWorkerRegrouped,
		// the last camera of a split left the configuration
		worker.EventIsolationEnded: events.TypeAlarmResolved,
	}[e.Kind]
	sev := events.SeverityWarning
	if e.Alarm {
		sev = events.SeverityAlarm
	}
	if e.Kind == worker.EventUpgraded || e.Kind == worker.EventRegrouped || e.Kind == worker.EventIsolationEnded {
		sev = events.SeverityInfo
	}
	n.appendEvent(events.Event{Server: n.cfg.Name, Type: typ, Severity: sev, Cameras: e.Cameras, Text: e.Text,
		Condition: e.Condition, Resolves: e.Resolves})
}

var _ cameraRecorder = (*recorder.Manager)(nil)
var _ cameraRecorder = (*worker.Pool)(nil)
