package backfill

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/testfootage"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

func openStore(t *testing.T, dir, server string) *storage.Store {
	t.Helper()
	st, err := storage.Open(storage.Options{Dir: dir, Server: server, Segment: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// peerSite is a buddy (rec-b) holding footage of the home's (rec-a)
// cameras, serving the real segments API, with a hook on its file route.
type peerSite struct {
	store *storage.Store
	srv   *httptest.Server

	mu       sync.Mutex
	requests []*http.Request // file requests seen
	corrupt  int             // flip a byte in the next n file responses
}

func startPeer(t *testing.T, cams []string, start time.Time, d time.Duration) *peerSite {
	t.Helper()
	p := &peerSite{store: openStore(t, t.TempDir(), "rec-b")}
	for _, cam := range cams {
		testfootage.Write(t, "..", p.store, cam, start, d)
	}
	if err := p.store.Sync(); err != nil {
		t.Fatal(err)
	}
	h := export.NewHandler(export.Options{Store: p.store, Self: "rec-b"})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != export.RouteFile {
			h.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.requests = append(p.requests, r.Clone(context.Background()))
		flip := p.corrupt > 0
		if flip {
			p.corrupt--
		}
		p.mu.Unlock()
		if !flip {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		body[len(body)/2] ^= 0xff // the bytes arrive changed; the digest is the peer's
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peerSite) peer() export.Peer { return export.Peer{Name: "rec-b", HTTP: p.srv.URL} }

type harness struct {
	home   *storage.Store
	dir    string
	mu     sync.Mutex
	done   []Episode
	refuse []error
}

func (h *harness) runner(t *testing.T, p *peerSite, cams []string, rate float64) *Runner {
	t.Helper()
	r, err := New(Options{
		Store: h.home, Home: "rec-a", Dir: filepath.Join(h.dir, ".backfill"), Rate: rate,
		Cameras: func() []string { return cams }, Peers: func() []export.Peer { return []export.Peer{p.peer()} },
		Scan: 100 * time.Millisecond, RetryAfter: 50 * time.Millisecond,
		OnCompleted: func(e Episode) { h.mu.Lock(); h.done = append(h.done, e); h.mu.Unlock() },
		OnRefused:   func(c Copy, err error) { h.mu.Lock(); h.refuse = append(h.refuse, err); h.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func start(t *testing.T, r *Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// sameFootage checks the home holds every segment the peer holds of cam,
// byte for byte, indexed with the peer's provenance.
func sameFootage(t *testing.T, home, peer *storage.Store, cam string) string {
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	want, _ := peer.Segments(cam, from, to)
	got, _ := home.Segments(cam, from, to)
	if len(got) != len(want) {
		return fmt.Sprintf("%s: home holds %d segments, peer %d", cam, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.RecordedBy != "rec-b" || g.Home != "rec-a" || !g.Start.Equal(w.Start) || g.Bytes != w.Bytes {
			return fmt.Sprintf("%s: segment %d is %+v, want %+v", cam, i, g, w)
		}
		a, _ := os.ReadFile(home.SegmentPath(g))
		b, _ := os.ReadFile(peer.SegmentPath(w))
		if !bytes.Equal(a, b) {
			return fmt.Sprintf("%s: segment %d differs from the peer's", cam, i)
		}
	}
	return ""
}

// TestRunnerCopiesWhatTheHomeLacks: the home's data dir is empty (a
// replaced disk); the runner copies every segment the peer holds of its
// cameras, byte for byte with provenance, raises one completed episode and
// leaves nothing in its temp folder.
func TestRunnerCopiesWhatTheHomeLacks(t *testing.T) {
	cams := []string{"rec-a/cam1", "rec-a/cam2"}
	p := startPeer(t, cams, time.Now().Add(-time.Minute), 7*time.Second)
	testfootage.Write(t, "..", p.store, "rec-c/other", time.Now().Add(-time.Minute), 3*time.Second)
	h := &harness{dir: t.TempDir()}
	h.home = openStore(t, h.dir, "rec-a")
	r := h.runner(t, p, cams, 0)
	start(t, r)
	testutil.EventuallyMsg(t, 30*time.Second, func() string {
		for _, cam := range cams {
			if m := sameFootage(t, h.home, p.store, cam); m != "" {
				return m
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.done) != 1 {
			return fmt.Sprintf("%d completed episodes", len(h.done))
		}
		return ""
	})
	h.mu.Lock()
	e := h.done[0]
	h.mu.Unlock()
	if e.Peer != "rec-b" || strings.Join(e.Cameras, ",") != "rec-a/cam1,rec-a/cam2" || e.Segments < 4 || e.Footage < 12*time.Second {
		t.Errorf("episode %+v", e)
	}
	if segs, _ := h.home.Segments("rec-c/other", time.Now().Add(-time.Hour), time.Now()); len(segs) != 0 {
		t.Errorf("copied another home's camera: %+v", segs)
	}
	time.Sleep(300 * time.Millisecond) // a few more rounds: nothing new
	st := r.Status()
	if len(st.Cameras) != 0 || st.Copying != nil || st.Refused != 0 {
		t.Errorf("status after the copy: %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(h.dir, ".backfill", "*")); len(left) != 0 {
		t.Errorf("left in the temp folder: %v", left)
	}
}

// TestRunnerRefusesCorruptCopy: a copy whose bytes do not match the
// peer's digest is refused, never indexed, and retried until a good one
// arrives.
func TestRunnerRefusesCorruptCopy(t *testing.T) {
	cams := []string{"rec-a/cam1"}
	p := startPeer(t, cams, time.Now().Add(-time.Minute), 3*time.Second)
	p.corrupt = 2
	h := &harness{dir: t.TempDir()}
	h.home = openStore(t, h.dir, "rec-a")
	r := h.runner(t, p, cams, 0)
	start(t, r)
	testutil.EventuallyMsg(t, 30*time.Second, func() string { return sameFootage(t, h.home, p.store, "rec-a/cam1") })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.refuse) != 2 || !strings.Contains(h.refuse[0].Error(), "sha-256") {
		t.Errorf("refusals: %v, want 2 digest mismatches", h.refuse)
	}
	if got := r.Status().Refused; got != 2 {
		t.Errorf("status counts %d refused copies, want 2", got)
	}
}

// TestRunnerResumesAfterRestart: a rate-limited copy is stopped midway; a
// new runner on the same folder resumes it with a range request from
// where it stopped, and the result is whole.
func TestRunnerResumesAfterRestart(t *testing.T) {
	cams := []string{"rec-a/cam1"}
	p := startPeer(t, cams, time.Now().Add(-time.Minute), 3*time.Second)
	h := &harness{dir: t.TempDir()}
	h.home = openStore(t, h.dir, "rec-a")
	segs, _ := p.store.Segments("rec-a/cam1", time.Now().Add(-time.Hour), time.Now())
	size := segs[0].Bytes
	// A rate that takes about 2 s for the first segment.
	r := h.runner(t, p, cams, float64(size)/2)
	stop := start(t, r)
	var midway int64
	testutil.EventuallyMsg(t, 20*time.Second, func() string {
		if c := r.Status().Copying; c != nil && c.Done > size/4 {
			midway = c.Done
			return ""
		}
		return fmt.Sprintf("copying: %+v", r.Status().Copying)
	})
	if got := r.Status().Cameras; len(got) != 1 || !got[0].Copying || !strings.Contains(got[0].Text, "rec-a/cam1: ") || !strings.Contains(got[0].Text, " at rec-b, copying ") {
		t.Errorf("status while copying: %+v", got)
	}
	stop()
	if n, _ := h.home.Segments("rec-a/cam1", time.Now().Add(-time.Hour), time.Now()); len(n) != 0 {
		t.Fatalf("a partial copy is indexed: %+v", n)
	}
	r2 := h.runner(t, p, cams, 0)
	start(t, r2)
	testutil.EventuallyMsg(t, 30*time.Second, func() string { return sameFootage(t, h.home, p.store, "rec-a/cam1") })
	p.mu.Lock()
	defer p.mu.Unlock()
	resumed := false
	for _, req := range p.requests {
		if rg := req.Header.Get("Range"); rg != "" {
			var off int64
			fmt.Sscanf(rg, "bytes=%d-", &off)
			resumed = resumed || (off >= midway && off < size)
		}
	}
	if !resumed {
		var rs []string
		for _, req := range p.requests {
			rs = append(rs, req.Header.Get("Range"))
		}
		t.Errorf("no request resumed the first segment after byte %d of %d: ranges %q", midway, size, rs)
	}
}

// TestRunnerWaitsForDiskSpace: with free space at the min_free floor the
// home copies nothing (retention would delete the oldest footage for it)
// and says why; once space is back it copies.
func TestRunnerWaitsForDiskSpace(t *testing.T) {
	cams := []string{"rec-a/cam1"}
	p := startPeer(t, cams, time.Now().Add(-time.Minute), 3*time.Second)
	h := &harness{dir: t.TempDir()}
	var free atomic.Uint64
	free.Store(1 << 20) // 1 MiB free of 1 GiB, floor 5 %
	st, err := storage.Open(storage.Options{Dir: h.dir, Server: "rec-a", Segment: 2 * time.Second, MinFreeFraction: 0.05,
		StatFS: func(string) (uint64, uint64, error) { return free.Load(), 1 << 30, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.home = st
	r := h.runner(t, p, cams, 0)
	start(t, r)
	testutil.EventuallyMsg(t, 10*time.Second, func() string {
		bf := r.Status()
		if len(bf.Cameras) == 1 && strings.Contains(bf.Cameras[0].Text, "waiting for disk space") {
			return ""
		}
		return fmt.Sprintf("status %+v", bf)
	})
	if segs, _ := st.Segments("rec-a/cam1", time.Now().Add(-time.Hour), time.Now()); len(segs) != 0 || r.Status().CopiedSegments != 0 {
		t.Fatalf("copied with no room: %+v", segs)
	}
	free.Store(1 << 29)
	r.mu.Lock()
	clear(r.avoid) // the next try is a minute away; the test does not wait for it
	r.mu.Unlock()
	testutil.EventuallyMsg(t, 20*time.Second, func() string { return sameFootage(t, st, p.store, "rec-a/cam1") })
}

// TestRunnerBoundsWhatItKeeps: a peer holding more than the runner keeps
// in memory is copied whole all the same (oldest first, then listed
// again), in one episode.
func TestRunnerBoundsWhatItKeeps(t *testing.T) {
	cams := []string{"rec-a/cam1", "rec-a/cam2"}
	p := startPeer(t, cams, time.Now().Add(-time.Minute), 9*time.Second)
	h := &harness{dir: t.TempDir()}
	h.home = openStore(t, h.dir, "rec-a")
	r := h.runner(t, p, cams, 0)
	r.maxCands = 2
	start(t, r)
	testutil.EventuallyMsg(t, 30*time.Second, func() string {
		for _, cam := range cams {
			if m := sameFootage(t, h.home, p.store, cam); m != "" {
				return m
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.done) == 0 {
			return "no completed episode"
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.done) != 1 || h.done[0].Segments < 8 {
		t.Errorf("episodes %+v, want one of every segment", h.done)
	}
}
