package worker

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// TestCamerasGivenArePolledAtOnce: once a worker has been given its
// cameras (a takeover, a camera moved in), the supervisor asks their
// states at once, not at the next heartbeat or follow-up poll: the page
// and the PSIM's notice learn of a takeover as soon as the worker applied
// it. The heartbeat and the follow-ups are an hour apart here, so only
// the poll at once can be seen.
func TestCamerasGivenArePolledAtOnce(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "w1.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // the handlers run on the server's goroutines
	var given []recorder.Camera
	var routes []string
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /cameras", func(rw http.ResponseWriter, r *http.Request) {
		var cams []recorder.Camera
		if err := json.NewDecoder(r.Body).Decode(&cams); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		given, routes = cams, append(routes, "PUT /cameras")
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+heartbeatRoute, func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		routes = append(routes, "GET "+heartbeatRoute)
		var st []recorder.Status
		for _, c := range given {
			st = append(st, recorder.Status{ID: c.ID, Home: c.Home, State: recorder.StateRecording})
		}
		mu.Unlock()
		writeJSON(rw, heartbeatAnswer(st))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln) //nolint:errcheck // closed below
	t.Cleanup(func() { srv.Close() })

	st, err := storage.Open(storage.Options{Dir: t.TempDir(), Server: "rec-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := NewPool(PoolOptions{Server: "rec-b", DataDir: t.TempDir(), Dir: t.TempDir(), Store: st,
		Segment: time.Minute, Part: time.Second, Heartbeat: time.Hour, Binary: "/bin/false"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.followUp = time.Hour
	w := newProc(1, socket)
	defer w.close()
	w.version = p.version
	p.mu.Lock()
	g := p.newGroupLocked()
	g.cams, g.gen = []recorder.Camera{{ID: "rec-a/cam1", Home: "rec-a"}}, 1
	p.mu.Unlock()
	done := make(chan ending, 1)
	go func() { done <- p.watch(g, w) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		s, ok := g.status["rec-a/cam1"]
		p.mu.Unlock()
		if ok {
			if s.State != recorder.StateRecording {
				t.Errorf("status %+v, want recording", s)
			}
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("the worker's states were not asked after it was given its cameras (routes served: %v)", routes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cancel()
	if end := <-done; end != endStop {
		t.Errorf("watch ended with %v, want endStop", end)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(routes) != 2 || routes[0] != "PUT /cameras" || routes[1] != "GET "+heartbeatRoute {
		t.Errorf("routes served %v, want the cameras given, then one heartbeat", routes)
	}
}
