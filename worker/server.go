package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/relay"
)

// Recorder is what a worker runs its cameras with (*recorder.Manager).
type Recorder interface {
	Set([]recorder.Camera)
	Status() []recorder.Status
	Subscribe(id string, buf int) (<-chan recorder.Frame, func())
	SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func())
	Close()
}

// ServeOptions configures the worker side.
type ServeOptions struct {
	// Socket is the Unix socket path the worker listens on; the supervisor
	// (and a restarted supervisor) connects to it.
	Socket string
	// ID is the worker's number, given by the supervisor.
	ID int
	// Version is the binary's build version: a supervisor of another
	// version replaces this worker (make before break).
	Version string
	// Recorder records the cameras. Required.
	Recorder Recorder
	// Updates holds the index updates of the worker's storage.
	Updates *Queue
	// Orphan is how long the worker records without hearing from any
	// supervisor before it stops (default 10 min): long enough for a
	// crashed supervisor to be restarted, short enough that a server taken
	// out of service does not record forever.
	Orphan time.Duration
	// Logger; nil discards logs.
	Logger *slog.Logger
	// Fault, when set, is called with each camera set; tests use it to
	// crash a worker (see FaultEnv). Never set in production.
	Fault func([]recorder.Camera)
	// Flush, when set, makes what the recorder wrote durable and its index
	// updates queued (storage.Store.Sync); POST /stop calls it after the
	// cameras stopped, so the answer holds the last updates.
	Flush func() error
	// Cut, when set, asks the worker's writers to close their segments at
	// the next keyframe (storage.Store.CutSegments), for the supervisor's
	// retention on a full disk.
	Cut func()
}

// Hello is the worker's answer to GET /hello.
type Hello struct {
	ID      int      `json:"id"`
	PID     int      `json:"pid"`
	Version string   `json:"version"`
	Cameras []string `json:"cameras"`
}

// Serve runs the worker's socket API until ctx ends, the supervisor asks it
// to stop (POST /stop: cameras stop, segments are closed and synced, the
// last updates are in the answer), or no supervisor has called for Orphan.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Recorder == nil || o.Socket == "" {
		return errors.New("worker: no recorder or socket")
	}
	if o.Updates == nil {
		o.Updates = &Queue{}
	}
	if o.Orphan <= 0 {
		o.Orphan = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	os.Remove(o.Socket) // a stale socket of a dead worker with this number
	ln, err := net.Listen("unix", o.Socket)
	if err != nil {
		return fmt.Errorf("worker %d: listen %s: %w", o.ID, o.Socket, err)
	}
	os.Chmod(o.Socket, 0o600) //nolint:errcheck // the folder is 0700 too
	defer os.Remove(o.Socket)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &server{o: o, cancel: cancel}
	w.touch()
	srv := &http.Server{Handler: w.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln) //nolint:errcheck

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-tick.C:
			if time.Since(time.Unix(0, w.lastCall.Load())) > o.Orphan {
				o.Logger.Warn("no supervisor for too long: stopping", "after", o.Orphan)
				cancel()
			}
			continue
		}
		break
	}
	w.stopOnce.Do(func() { o.Recorder.Close() })
	shut, cancelShut := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShut()
	srv.Shutdown(shut) //nolint:errcheck
	return nil
}

type server struct {
	o        ServeOptions
	cancel   context.CancelFunc
	lastCall atomic.Int64
	stopOnce sync.Once

	mu      sync.Mutex
	cameras []recorder.Camera
}

func (w *server) touch() { w.lastCall.Store(time.Now().UnixNano()) }

func (w *server) recording(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.cameras {
		if c.ID == id {
			return true
		}
	}
	return false
}

func (w *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		ids := make([]string, 0, len(w.cameras))
		for _, c := range w.cameras {
			ids = append(ids, c.ID)
		}
		w.mu.Unlock()
		writeJSON(rw, Hello{ID: w.o.ID, PID: os.Getpid(), Version: w.o.Version, Cameras: ids})
	})
	// healthz answers only when the recorder itself answers: a deadlock in
	// a pipeline that holds the recorder makes the heartbeat fail, and the
	// supervisor replaces the worker
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() { w.o.Recorder.Status(); close(done) }()
		select {
		case <-done:
			rw.WriteHeader(http.StatusNoContent)
		case <-time.After(time.Second):
			http.Error(rw, "recorder does not answer", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, w.o.Recorder.Status())
	})
	mux.HandleFunc("GET "+heartbeatRoute, func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, heartbeatAnswer(w.o.Recorder.Status()))
	})
	mux.HandleFunc("PUT /cameras", func(rw http.ResponseWriter, r *http.Request) {
		var cams []recorder.Camera
		if err := json.NewDecoder(r.Body).Decode(&cams); err != nil {
			http.Error(rw, "cameras: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.cameras = cams
		w.mu.Unlock()
		if w.o.Fault != nil {
			w.o.Fault(cams)
		}
		w.o.Recorder.Set(cams)
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.Handle(relay.Route, relay.Handler(w.o.Recorder, w.recording, w.o.Logger))
	mux.HandleFunc("GET /index", func(rw http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		b, wait := w.o.Updates.Since(after, 4096)
		if wait != nil {
			select {
			case <-wait:
				b, _ = w.o.Updates.Since(after, 4096)
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			}
		}
		writeJSON(rw, b)
	})
	// the supervisor's retention found only open segments to delete
	mux.HandleFunc("POST /cut", func(rw http.ResponseWriter, r *http.Request) {
		if w.o.Cut != nil {
			w.o.Cut()
		}
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /stop", func(rw http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		w.stopOnce.Do(func() { w.o.Recorder.Close() })
		if w.o.Flush != nil {
			if err := w.o.Flush(); err != nil {
				w.o.Logger.Error("final sync", "err", err)
			}
		}
		b, _ := w.o.Updates.Since(after, 1<<30)
		writeJSON(rw, b)
		w.cancel()
	})
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.touch()
		mux.ServeHTTP(rw, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v) //nolint:errcheck
}
