package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// FaultEnv names the environment variable that tests set to make a worker
// crash: a worker given a camera whose id is its value dies (an unrecovered
// panic, as a fatal bug in a library would) a moment after it starts
// recording it. Only tests set it; it is inherited from the supervisor.
const FaultEnv = "BUDDYREC_TEST_WORKER_CRASH"

// LeakEnv names the environment variable that tests set to make one
// worker use too much memory: the first worker given cameras while the
// file it names does not exist creates it and holds 256 MiB, as a leak
// would. Only tests set it.
const LeakEnv = "BUDDYREC_TEST_WORKER_LEAK"

// WorkerOptions configures one worker process (the hidden `buddyrec
// worker` command).
type WorkerOptions struct {
	// Server, DataDir, Segment and Part configure the worker's storage
	// as the supervisor runs it (see PoolOptions).
	Server, DataDir string
	Segment, Part   time.Duration
	ID              int
	Socket          string
	// StandbyWindow is the recorder's (see recorder.ManagerOptions).
	StandbyWindow time.Duration
	// SyncMethod is the storage's, as the supervisor's (PoolOptions).
	SyncMethod storage.SyncMethod
	Logger     *slog.Logger
}

// workerSyncParallelism is how many segment files a worker's sync round
// syncs at once: more than the default grouping's 25 cameras, so that a
// round's fdatasync calls all start together instead of 16 and then the
// rest as slots free.
//
// Why: a worker runs one P, and a goroutine blocked in fdatasync keeps it
// until the runtime's sysmon thread retakes it for the next one. Each
// retake sets sysmon polling every 20 µs again, for as long as the round
// lasts, so a round in two waves kept it polling about twice as long.
// bench record -cameras 250 (10 workers), per-thread CPU from
// /proc/PID/task/*/schedstat over 15 s: the ten sysmons woke 24–36 k
// times (0.34–0.60 CPU-s) in five runs with all at once, against 45–47 k
// in seven of eight runs with 16 (25 k once; 0.53–0.72 CPU-s); syncing
// one file at a time made it 164 k (1.47 CPU-s). The whole server's CPU
// moved within the noise (README, Benchmarks, session 16). What the disk
// sees changes little: ten workers already had 160 calls in flight at a
// round's start. The server's own store, recording in process, keeps the
// default.
const workerSyncParallelism = 64

// RunWorker records cameras the supervisor gives it over Socket until the
// supervisor stops it (or ctx ends, or no supervisor calls for the orphan
// timeout). It writes and syncs segment files itself; the index updates go
// to the supervisor, the only writer of index.db.
func RunWorker(ctx context.Context, o WorkerOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// One P: a worker records a few dozen cameras at most, which one core
	// carries easily (250 take half of one in a single process), and idle
	// Ps spinning for work in every one of many processes cost more CPU
	// than they carry (bench record at 250 cameras in 10 workers: 0.172
	// CPU-s per camera-minute with GOMAXPROCS=2, 0.147 with one; before
	// read batching +45 %). GOMAXPROCS in the environment overrides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	q := &Queue{}
	var writes partWrites
	store, err := storage.Open(storage.Options{
		Dir:     o.DataDir,
		Server:  o.Server,
		Segment: o.Segment,
		Part:    o.Part,
		// every fdatasync of a round at once (see workerSyncParallelism)
		SyncParallelism: workerSyncParallelism,
		SyncMethod:      o.SyncMethod,
		Logger:          log.With("part", "storage"),
		// the supervisor raises them as its own (event log, PSIM)
		OnAlarm: func(a storage.Alarm) {
			if b, err := json.Marshal(queued{Alarm: &a}); err == nil {
				q.Push(b)
			}
		},
		ObservePartWrite: writes.add,
		// only the supervisor can delete: a full disk asks it to, and
		// the writer waits for the space (storage.Options.NeedSpace)
		NeedSpace: func() {
			if b, err := json.Marshal(queued{NeedSpace: true}); err == nil {
				q.Push(b)
			}
		},
		Commit: func(us []storage.IndexUpdate) error {
			raw := make([]json.RawMessage, 0, len(us)+1)
			for _, u := range us {
				b, err := json.Marshal(u)
				if err != nil {
					return err
				}
				raw = append(raw, b)
			}
			// the round's part write times ride with its updates: the
			// supervisor's segment write latency metric, no extra call
			if ds := writes.take(); len(ds) > 0 {
				if b, err := json.Marshal(queued{PartWrites: ds}); err == nil {
					raw = append(raw, b)
				}
			}
			q.Push(raw...)
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("worker %d: %w", o.ID, err)
	}
	rec := recorder.NewManager(recorder.ManagerOptions{Sink: storeSink{store}, Logger: log.With("part", "recorder"), StandbyWindow: o.StandbyWindow})
	var faults []func([]recorder.Camera)
	if id := os.Getenv(FaultEnv); id != "" {
		faults = append(faults, crashOn(id, log))
	}
	if marker := os.Getenv(LeakEnv); marker != "" {
		faults = append(faults, leakOnce(marker, log))
	}
	var fault func([]recorder.Camera)
	if len(faults) > 0 {
		fault = func(cams []recorder.Camera) {
			for _, f := range faults {
				f(cams)
			}
		}
	}
	orphan, _ := time.ParseDuration(os.Getenv(OrphanEnv)) // 0: the default
	err = Serve(ctx, ServeOptions{
		Orphan:   orphan,
		Socket:   o.Socket,
		ID:       o.ID,
		Version:  BinaryVersion(),
		Recorder: rec,
		Updates:  q,
		Logger:   log,
		Fault:    fault,
		Flush:    store.Sync,
		Cut:      store.CutSegments,
	})
	rec.Close()
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	return err
}

// queued is one entry of a worker's queue: an index update, or a storage
// alarm the worker's store raised (a full disk, a failed write).
type queued struct {
	storage.IndexUpdate
	Alarm *storage.Alarm `json:"alarm,omitempty"`
	// NeedSpace asks the supervisor to run retention now: a write of
	// this worker met a full disk and waits for space.
	NeedSpace bool `json:"need_space,omitempty"`
	// PartWrites are how long the fragment writes of a sync round took
	// (storage.Options.ObservePartWrite), for the supervisor's metric.
	PartWrites []time.Duration `json:"part_writes,omitempty"`
}

// maxPartWrites bounds what a worker keeps between sync rounds: a
// round every part, a write per camera and part, so far more than any
// worker's cameras write; beyond it the metric misses some writes
// rather than the worker growing.
const maxPartWrites = 4096

// partWrites gathers the part write times between sync rounds. add runs
// on the cameras' writer goroutines and never blocks on more than the
// mutex.
type partWrites struct {
	mu sync.Mutex
	ds []time.Duration
}

func (p *partWrites) add(d time.Duration) {
	p.mu.Lock()
	if len(p.ds) < maxPartWrites {
		p.ds = append(p.ds, d)
	}
	p.mu.Unlock()
}

func (p *partWrites) take() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	ds := p.ds
	p.ds = nil
	return ds
}

// crashOn returns a Fault hook that crashes the process a second after it
// is given camera id.
func crashOn(id string, log *slog.Logger) func([]recorder.Camera) {
	return func(cams []recorder.Camera) {
		for _, c := range cams {
			if c.ID == id {
				log.Warn("test fault: crashing this worker", "camera", id)
				go func() {
					time.Sleep(time.Second)
					panic("test fault: worker crash for camera " + id)
				}()
			}
		}
	}
}

// leakOnce returns a Fault hook that, in the first worker to claim
// marker, allocates and holds 256 MiB 3 s later.
func leakOnce(marker string, log *slog.Logger) func([]recorder.Camera) {
	var held [][]byte
	return func(cams []recorder.Camera) {
		f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil || len(cams) == 0 {
			return
		}
		f.Close()
		go func() {
			time.Sleep(3 * time.Second)
			log.Warn("test fault: holding 256 MiB")
			for range 256 {
				b := make([]byte, 1<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				held = append(held, b)
			}
		}()
	}
}

// OrphanEnv names the environment variable that tests set to shorten the
// orphan timeout (see ServeOptions.Orphan), e.g. "3s". Only tests set it.
const OrphanEnv = "BUDDYREC_TEST_WORKER_ORPHAN"

// storeSink adapts *storage.Store to recorder.Sink.
type storeSink struct{ s *storage.Store }

func (s storeSink) Begin(st storage.Stream) (recorder.SampleWriter, error) {
	w, err := s.s.Begin(st)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// BinaryVersion identifies the running executable file: its device,
// inode, size and modification time, read through /proc/self/exe, which
// names the file the process runs even after an upgrade replaced the path.
// A supervisor replaces workers of another binary (an upgrade); reading
// it costs one stat, so a worker starts at once.
func BinaryVersion() string {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return "unknown"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%x-%x", fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%x:%x-%x-%x", st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano())
}
