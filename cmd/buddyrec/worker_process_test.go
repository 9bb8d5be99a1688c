package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/worker"
)

// These tests run a real supervisor (`buddyrec run` with [recorder]
// cameras_per_worker) whose cameras record in real worker processes, and
// break the workers with signals: what a technician checks is the export
// of each camera (its X-Buddyrec-Gaps) and which process records what.

// liveWorker is one worker process as its socket describes it.
type liveWorker struct {
	worker.Hello
	Socket string
}

// workersOf asks every worker socket under dataDir who it is.
func workersOf(dataDir string) ([]liveWorker, error) {
	socks, err := filepath.Glob(filepath.Join(dataDir, "workers", "w*.sock"))
	if err != nil {
		return nil, err
	}
	var out []liveWorker
	for _, s := range socks {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s)
		}}}
		resp, err := c.Get("http://worker/hello")
		if err != nil {
			continue // a socket of a worker that is going away
		}
		var h worker.Hello
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err == nil {
			sort.Strings(h.Cameras)
			out = append(out, liveWorker{Hello: h, Socket: s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// killWorkersAfter makes sure no worker of srv outlives the test: the
// supervisor is stopped first (which stops its workers), then any worker
// left (a supervisor killed by the test) is killed by its pid.
func killWorkersAfter(t *testing.T, srv *site.Server) {
	t.Cleanup(func() {
		srv.Stop(10 * time.Second)
		srv.KillWorkers()
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(srv.DataDir, "workers", "w*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 15 {
					lines = lines[len(lines)-15:]
				}
				t.Logf("--- %s:\n%s", filepath.Base(l), strings.Join(lines, "\n"))
			}
		}
	})
}

// gapsOf is exportGaps (the X-Buddyrec-Gaps of an export of camera over
// [from, to) from srv) decoded.
func gapsOf(t *testing.T, srv *site.Server, camera string, from, to time.Time) []api.Gap {
	t.Helper()
	var gaps []api.Gap
	if h := exportGaps(t, srv, camera, from, to); h != "" {
		if err := json.Unmarshal([]byte(h), &gaps); err != nil {
			t.Fatalf("X-Buddyrec-Gaps %q: %v", h, err)
		}
	}
	return gaps
}

// A server records 6 cameras in 3 workers. One worker is killed -9, or
// stopped (SIGSTOP, a hang): only its two cameras miss footage, no more
// than the restart costs, and the other four have no gap; the other two
// workers are the same processes as before.
func TestWorkerFailureCostsOnlyItsCameras(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		// most footage the worker's cameras may miss: a kill is seen at
		// once (≤ 3 s to record again, the bound); a hang only
		// after the heartbeat goes unanswered for 2 s
		maxGap time.Duration
	}{
		{"kill", syscall.SIGKILL, 3 * time.Second},
		{"stop", syscall.SIGSTOP, 3*time.Second + 2500*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCameras(t, 6, nil)
			s := startSite(t, site.Spec{Servers: []site.ServerSpec{
				{Name: "rec-a", Cameras: cams(c, 1, 6), Extra: "[recorder]\ncameras_per_worker = 2\n"},
			}})
			a := s.Server("rec-a")
			killWorkersAfter(t, a)
			all6 := []string{"rec-a/cam1", "rec-a/cam2", "rec-a/cam3", "rec-a/cam4", "rec-a/cam5", "rec-a/cam6"}
			eventually(t, 30*time.Second, recordsExactly(a, all6...))
			before, err := workersOf(a.DataDir)
			if err != nil || len(before) != 3 {
				t.Fatalf("want 3 workers of 2 cameras, got %+v (%v)", before, err)
			}
			for _, w := range before {
				if len(w.Cameras) != 2 {
					t.Fatalf("want 2 cameras per worker, got %+v", before)
				}
			}
			time.Sleep(3 * time.Second)
			from := time.Now().Add(-2 * time.Second)

			victim := before[1]
			if err := syscall.Kill(victim.PID, tc.sig); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(victim.PID, syscall.SIGKILL) })
			eventually(t, 20*time.Second, replacedAndRecording(a, victim, all6...))
			time.Sleep(4 * time.Second)
			to := indexedTo(t, a, all6...)

			after, _ := workersOf(a.DataDir)
			pids := map[int]bool{}
			for _, w := range after {
				pids[w.PID] = true
			}
			for _, w := range []liveWorker{before[0], before[2]} {
				if !pids[w.PID] {
					t.Errorf("worker %d (pid %d, %v) was replaced too; only the victim should be: %+v", w.ID, w.PID, w.Cameras, after)
				}
			}
			hit := map[string]bool{}
			for _, id := range victim.Cameras {
				hit[id] = true
			}
			for _, id := range all6 {
				gaps := gapsOf(t, a, id, from, to)
				t.Logf("%s: gaps %v (total %v)", id, gaps, gapTotal(gaps))
				switch {
				case !hit[id] && len(gaps) > 0:
					t.Errorf("%s records in another worker but its export has gaps %v", id, gaps)
				case hit[id] && gapTotal(gaps) > tc.maxGap:
					t.Errorf("%s lost %v to its worker's failure, want ≤ %v", id, gapTotal(gaps), tc.maxGap)
				}
			}
		})
	}
}

// A camera that crashes its worker (the test-only fault hook: an
// unrecovered panic a second after the worker gets cam3) ends up alone in
// a worker of its own, an alarm names it, and the cameras of the other
// worker record throughout without a gap.
func TestCrashingCameraEndsUpAlone(t *testing.T) {
	t.Setenv(worker.FaultEnv, "rec-a/cam3")
	c := startCameras(t, 4, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 4), Extra: "[recorder]\ncameras_per_worker = 2\n"},
	}})
	a := s.Server("rec-a")
	killWorkersAfter(t, a)
	from := time.Now()
	var innocent []string // the cameras never in cam3's worker
	eventually(t, 60*time.Second, func() string {
		ws, err := workersOf(a.DataDir)
		if err != nil {
			return err.Error()
		}
		alone := false
		innocent = innocent[:0]
		for _, w := range ws {
			if strings.Join(w.Cameras, ",") == "rec-a/cam3" {
				alone = true
			}
			if len(w.Cameras) == 2 {
				innocent = append(innocent, w.Cameras...)
			}
		}
		if !alone || len(innocent) != 2 {
			return fmt.Sprintf("cam3 not alone yet, or the other pair split: %+v", ws)
		}
		return eventsOf(a, "worker.crash_loop", "rec-a/cam3")()
	})
	eventually(t, 20*time.Second, func() string {
		rec, err := a.Recording(context.Background())
		if err != nil {
			return err.Error()
		}
		for _, id := range []string{"rec-a/cam1", "rec-a/cam2", "rec-a/cam4"} {
			if !rec[id] {
				return id + " does not record"
			}
		}
		return ""
	})
	if msg := eventsOf(a, "worker.isolated", "rec-a/cam3")(); msg != "" {
		t.Errorf("no alarm about splitting cam3's worker: %s", msg)
	}
	// the API and the metrics show the culprit's restarts, and every
	// worker's memory and CPU
	var wa struct{ Workers []worker.WorkerInfo }
	if err := a.GetJSON(context.Background(), "/api/v1/workers", &wa); err != nil {
		t.Fatal(err)
	}
	slot := 0
	for _, w := range wa.Workers {
		if strings.Join(w.Cameras, ",") == "rec-a/cam3" {
			slot = w.Slot
			if w.Restarts < 3 {
				t.Errorf("cam3's worker reports %d restarts, want ≥ 3 (the crash loop): %+v", w.Restarts, w)
			}
		}
		if w.PID > 0 && w.RSS == 0 {
			t.Errorf("worker without its memory figure: %+v", w)
		}
	}
	resp, err := http.Get("http://" + a.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{fmt.Sprintf(`buddyrec_worker_restarts_total{worker="%d"}`, slot), "buddyrec_worker_resident_bytes{", "buddyrec_worker_cpu_seconds_total{"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// the workers' part writes reach the supervisor's latency histogram
	if m := regexp.MustCompile(`(?m)^buddyrec_segment_write_seconds_count(\{[^}]*\})? (\d+)$`).FindStringSubmatch(string(body)); m == nil || m[2] == "0" {
		t.Errorf("/metrics: segment write latency from the workers missing or empty: %q", m)
	}
	time.Sleep(2 * time.Second)
	to := indexedTo(t, a, innocent...)
	for _, id := range innocent {
		// from its first footage on (before it, the server was starting)
		var rec api.Recordings
		q := url.Values{"camera": {id}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
		if err := a.GetJSON(context.Background(), "/api/v1/recordings?"+q.Encode(), &rec); err != nil || len(rec.Spans) == 0 {
			t.Fatalf("recordings of %s: %+v %v", id, rec, err)
		}
		first := rec.Spans[0].Start.Add(time.Second)
		gaps := gapsOf(t, a, id, first, to)
		t.Logf("%s: footage from %v, gaps since %v", id, rec.Spans[0].Start, gaps)
		if len(gaps) > 0 || to.Sub(first) < 5*time.Second {
			t.Errorf("%s shares no worker with cam3 but has gaps %v (over %v)", id, gaps, to.Sub(first))
		}
	}
}

// The innocent cameras of a crash loop share a worker again: cam3 crashes
// the worker it shares with cam1 and cam2; the split leaves each alone,
// and once cam1 and cam2 have recorded alone without a failure for the
// regroup time (5 s here, 10 min by default) each moves, make before
// break, into the worker of cam4, which has room. cam3 stays alone. No
// camera but cam3 has a gap from after the split on.
func TestInnocentCamerasRegroupAfterACrashLoop(t *testing.T) {
	t.Setenv(worker.FaultEnv, "rec-a/cam3")
	t.Setenv(worker.RegroupEnv, "5s")
	c := startCameras(t, 4, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 4), Extra: "[recorder]\ncameras_per_worker = 3\n"},
	}})
	a := s.Server("rec-a")
	killWorkersAfter(t, a)
	eventually(t, 60*time.Second, eventsOf(a, "worker.isolated", "rec-a/cam1", "rec-a/cam2", "rec-a/cam3"))
	innocent := []string{"rec-a/cam1", "rec-a/cam2", "rec-a/cam4"}
	eventually(t, 20*time.Second, func() string {
		rec, err := a.Recording(context.Background())
		if err != nil {
			return err.Error()
		}
		for _, id := range innocent {
			if !rec[id] {
				return id + " does not record"
			}
		}
		return ""
	})
	time.Sleep(2 * time.Second) // their first parts after the split are durable
	from := time.Now()
	eventually(t, 60*time.Second, func() string {
		ws, err := workersOf(a.DataDir)
		if err != nil {
			return err.Error()
		}
		var groups []string
		for _, w := range ws {
			groups = append(groups, strings.Join(w.Cameras, ","))
		}
		sort.Strings(groups)
		if strings.Join(groups, " ") != "rec-a/cam1,rec-a/cam2,rec-a/cam4 rec-a/cam3" {
			return fmt.Sprintf("workers record %v", groups)
		}
		return ""
	})
	for _, id := range []string{"rec-a/cam1", "rec-a/cam2"} {
		if msg := eventsOf(a, "worker.regrouped", id)(); msg != "" {
			t.Errorf("no event about regrouping %s: %s", id, msg)
		}
	}
	// the split's alarm ends with it: cam1 and cam2 share a worker
	// again, cam3 has its own crash_loop alarm
	eventually(t, 10*time.Second, func() string {
		var ev struct {
			Events []struct {
				Type       string    `json:"type"`
				ResolvedAt time.Time `json:"resolved_at"`
			} `json:"events"`
		}
		if err := a.GetJSON(context.Background(), "/api/v1/events?limit=200", &ev); err != nil {
			return err.Error()
		}
		for _, e := range ev.Events {
			if e.Type == "worker.isolated" && e.ResolvedAt.IsZero() {
				return "the worker.isolated alarm is still open after the regroup"
			}
		}
		return ""
	})
	time.Sleep(4 * time.Second)
	to := indexedTo(t, a, innocent...)
	for _, id := range innocent {
		if gaps := gapsOf(t, a, id, from, to); len(gaps) > 0 {
			t.Errorf("%s: gaps %v across the regrouping, want none", id, gaps)
		}
	}
}

// startWorkerPerCamera starts rec-a recording 2 cameras in a worker each
// and waits until both record.
func startWorkerPerCamera(t *testing.T) (*site.Server, []liveWorker) {
	t.Helper()
	return startWorkerPerCameraOf(t, cams(startCameras(t, 2, nil), 1, 2))
}

// startWorkerPerCameraOf is startWorkerPerCamera with the cameras cam1
// and cam2 given.
func startWorkerPerCameraOf(t *testing.T, cameras []site.Camera) (*site.Server, []liveWorker) {
	t.Helper()
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cameras, Extra: "[recorder]\ncameras_per_worker = 1\n"},
	}})
	a := s.Server("rec-a")
	killWorkersAfter(t, a)
	eventually(t, 30*time.Second, recordsExactly(a, "rec-a/cam1", "rec-a/cam2"))
	ws, _ := workersOf(a.DataDir)
	if len(ws) != 2 {
		t.Fatalf("want a worker per camera, got %+v", ws)
	}
	return a, ws
}

// startTwoWorkers starts rec-a recording 4 cameras in 2 workers and waits
// until both workers run and every camera records.
func startTwoWorkers(t *testing.T) (a *site.Server, all4 []string, workers []liveWorker) {
	t.Helper()
	return startTwoWorkersOf(t, testBin)
}

// startTwoWorkersOf is startTwoWorkers running the binary bin.
func startTwoWorkersOf(t *testing.T, bin string) (a *site.Server, all4 []string, workers []liveWorker) {
	t.Helper()
	c := startCameras(t, 4, nil)
	s := startSite(t, site.Spec{Bin: bin, Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 4), Extra: "[recorder]\ncameras_per_worker = 2\n"},
	}})
	a = s.Server("rec-a")
	killWorkersAfter(t, a)
	all4 = []string{"rec-a/cam1", "rec-a/cam2", "rec-a/cam3", "rec-a/cam4"}
	eventually(t, 30*time.Second, recordsExactly(a, all4...))
	workers, _ = workersOf(a.DataDir)
	if len(workers) != 2 {
		t.Fatalf("want 2 workers, got %+v", workers)
	}
	return a, all4, workers
}

// The supervisor is killed -9 while its workers record: the segment files
// keep growing during the outage, the restarted supervisor takes the same
// worker processes over, and the index covers the outage with at most a
// part's gap.
func TestSupervisorCrashCostsNoFootage(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	a, all4, before := startTwoWorkers(t)
	time.Sleep(3 * time.Second)
	from := time.Now().Add(-2 * time.Second)

	a.KillSupervisor()
	down := time.Now()
	time.Sleep(time.Second)
	sizes := func() map[string]int64 {
		out := map[string]int64{}
		for i := 1; i <= 4; i++ {
			for f, n := range segmentsSince(a.DataDir, "rec-a", fmt.Sprintf("cam%d", i), down.Add(-time.Minute)) {
				out[f] = n
			}
		}
		return out
	}
	first := sizes()
	time.Sleep(4 * time.Second)
	second := sizes()
	for i := 1; i <= 4; i++ {
		grew := false
		for f, n := range second {
			if strings.Contains(f, fmt.Sprintf("/cam%d/", i)) && n > first[f] {
				grew = true
			}
		}
		if !grew {
			t.Errorf("cam%d: no segment file grew while the supervisor was down: %v then %v", i, first, second)
		}
	}

	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, recordsExactly(a, all4...))
	after, _ := workersOf(a.DataDir)
	if fmt.Sprint(pidsOf(after)) != fmt.Sprint(pidsOf(before)) {
		t.Errorf("the restarted supervisor should take over the same workers: before %+v, after %+v", before, after)
	}
	time.Sleep(3 * time.Second)
	to := indexedTo(t, a, all4...)
	for _, id := range all4 {
		gaps := gapsOf(t, a, id, from, to)
		t.Logf("%s: gaps %v over a supervisor outage from %v", id, gaps, down.Format("15:04:05.000"))
		if gapTotal(gaps) > time.Second {
			t.Errorf("%s: the index lacks %v of footage the workers recorded while the supervisor was down (want ≤ one part, 1 s): %v", id, gapTotal(gaps), gaps)
		}
	}

	// a clean stop stops the workers too
	a.Stop(15 * time.Second)
	eventually(t, 10*time.Second, func() string {
		for _, w := range after {
			if syscall.Kill(w.PID, 0) == nil && !strings.Contains(procState(w.PID), "Z") {
				return fmt.Sprintf("worker %d (pid %d) still runs after the supervisor stopped cleanly", w.ID, w.PID)
			}
		}
		return ""
	})
}

func procState(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+3 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

func pidsOf(ws []liveWorker) []int {
	var out []int
	for _, w := range ws {
		out = append(out, w.PID)
	}
	sort.Ints(out)
	return out
}

// A worker that goes over the memory limit (the default for 2 cameras;
// the test-only hook makes it hold 256 MiB, as a leak would) is replaced
// make before break: an alarm, a new process, and no gap in the footage.
func TestWorkerOverMemoryReplacedWithoutGap(t *testing.T) {
	t.Setenv(worker.LeakEnv, filepath.Join(t.TempDir(), "leaked"))
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2), Extra: "[recorder]\ncameras_per_worker = 2\n"},
	}})
	a := s.Server("rec-a")
	killWorkersAfter(t, a)
	both := []string{"rec-a/cam1", "rec-a/cam2"}
	eventually(t, 30*time.Second, recordsExactly(a, both...))
	first, _ := workersOf(a.DataDir)
	if len(first) != 1 || first[0].ID != 1 {
		t.Fatalf("want worker 1 recording both cameras, got %+v (did the leak come before recording?)", first)
	}
	from := time.Now()
	eventually(t, 30*time.Second, func() string {
		if msg := eventsOf(a, "worker.memory", "rec-a/cam1", "rec-a/cam2", "MiB")(); msg != "" {
			return msg
		}
		ws, _ := workersOf(a.DataDir)
		if len(ws) != 1 || ws[0].ID == first[0].ID || ws[0].PID == first[0].PID {
			return fmt.Sprintf("not replaced yet: %+v (first %+v)", ws, first)
		}
		return ""
	})
	eventually(t, 10*time.Second, recordsExactly(a, both...))
	time.Sleep(3 * time.Second)
	to := indexedTo(t, a, both...)
	ws, _ := workersOf(a.DataDir)
	t.Logf("worker of 2 cameras after the replacement: %+v, RSS %d MiB", ws, procRSS(ws[0].PID)>>20)
	for _, id := range both {
		gaps := gapsOf(t, a, id, from, to)
		if len(gaps) > 0 {
			t.Errorf("%s: the memory replacement should be make before break, but the export has gaps %v", id, gaps)
		}
	}
}

// An upgrade: the supervisor is killed and its binary replaced (a new
// file, as a package upgrade leaves it). The restarted supervisor finds
// workers of the old binary, takes them over, and replaces them one at a
// time, make before break: new processes, an event each, and no gap
// beyond a part.
func TestUpgradeReplacesWorkersWithoutGap(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	// This test's own copy of the binary: replacing the shared one would
	// upgrade the workers of the tests running beside it.
	b, err := os.ReadFile(testBin)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "buddyrec")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	a, all4, before := startTwoWorkersOf(t, bin)
	time.Sleep(2 * time.Second)
	from := time.Now().Add(-2 * time.Second)
	a.KillSupervisor()
	// the upgrade: a new file at the binary's path (byte-identical here;
	// what makes it another build is that it is another file)
	if err := os.WriteFile(bin+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	old := map[int]bool{before[0].PID: true, before[1].PID: true}
	eventually(t, 60*time.Second, func() string {
		ws, _ := workersOf(a.DataDir)
		if len(ws) != 2 {
			return fmt.Sprintf("workers %+v", ws)
		}
		for _, w := range ws {
			if old[w.PID] || w.Version == before[0].Version {
				return fmt.Sprintf("worker %d (pid %d) of the old binary still records", w.ID, w.PID)
			}
		}
		return recordsExactly(a, all4...)()
	})
	if msg := eventsOf(a, "worker.upgraded", "make before break")(); msg != "" {
		t.Error(msg)
	}
	time.Sleep(3 * time.Second)
	to := indexedTo(t, a, all4...)
	for _, id := range all4 {
		gaps := gapsOf(t, a, id, from, to)
		t.Logf("%s: gaps %v", id, gaps)
		if gapTotal(gaps) > time.Second {
			t.Errorf("%s lost %v to the upgrade, want ≤ one part (1 s): %v", id, gapTotal(gaps), gaps)
		}
	}
}

// Live frames of cameras recorded in workers come from the worker over its
// socket: a viewer of each of two cameras (in different workers) gets
// frames from a keyframe on; killing one worker interrupts only its
// camera's stream, which resumes from the replacement (a new stream: the
// camera's session started again), while the other's goes on as the same
// stream.
func TestLiveFromWorkersSurvivesAWorkerCrash(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	a, ws := startWorkerPerCamera(t)
	type watch struct {
		mu      sync.Mutex
		count   int
		first   bool // the first frame was a keyframe
		streams map[*storage.Stream]bool
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	views := map[string]*watch{}
	for _, id := range []string{"rec-a/cam1", "rec-a/cam2"} {
		v := &watch{streams: map[*storage.Stream]bool{}}
		views[id] = v
		frames := make(chan recorder.Frame, 512)
		go func() {
			// one request for the whole test: the supervisor keeps it open
			// across the worker's replacement
			relay.Pull(ctx, http.DefaultClient, "http://"+a.HTTP, id, nil, frames)
			close(frames)
		}()
		go func() {
			for f := range frames {
				v.mu.Lock()
				if v.count == 0 {
					v.first = f.Startable()
				}
				v.count++
				v.streams[f.Stream] = true
				v.mu.Unlock()
			}
		}()
	}
	counts := func() map[string]int {
		out := map[string]int{}
		for id, v := range views {
			v.mu.Lock()
			out[id] = v.count
			v.mu.Unlock()
		}
		return out
	}
	time.Sleep(3 * time.Second)
	for id, v := range views {
		v.mu.Lock()
		if v.count < 25 || !v.first || len(v.streams) != 1 {
			t.Errorf("%s: %d frames in 3 s, first a keyframe: %v, %d streams", id, v.count, v.first, len(v.streams))
		}
		v.mu.Unlock()
	}
	victim := ws[0]
	syscall.Kill(victim.PID, syscall.SIGKILL)
	eventually(t, 20*time.Second, func() string {
		now, _ := workersOf(a.DataDir)
		if len(now) == 2 && now[0].PID != victim.PID && now[1].PID != victim.PID {
			return ""
		}
		return fmt.Sprintf("not replaced: %+v", now)
	})
	time.Sleep(3 * time.Second)
	before := counts()
	time.Sleep(2 * time.Second)
	after := counts()
	for id, v := range views {
		v.mu.Lock()
		t.Logf("%s: %d frames, %d streams", id, v.count, len(v.streams))
		switch {
		case after[id]-before[id] < 25:
			t.Errorf("%s: %d frames in the last 2 s: the viewer did not resume", id, after[id]-before[id])
		case id == victim.Cameras[0] && len(v.streams) != 2:
			t.Errorf("%s: its worker was replaced, so its stream should have started again once (got %d streams): is it fed from the worker?", id, len(v.streams))
		case id != victim.Cameras[0] && len(v.streams) != 1:
			t.Errorf("%s records in another worker, but its stream was interrupted (%d streams)", id, len(v.streams))
		}
		v.mu.Unlock()
	}
}

// A storage alarm raised inside a worker (here a full disk: the data
// folder is a small tmpfs that something else fills) reaches the
// supervisor's event log like its own, naming the camera.
func TestWorkerStorageAlarmReachesTheEventLog(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	dir := testutil.Tmpfs(t, "64m")
	c := startCameras(t, 1, nil)
	a := startSite(t, site.Spec{Dir: dir, Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Extra: "[recorder]\ncameras_per_worker = 1\n"},
	}}).Server("rec-a")
	killWorkersAfter(t, a)
	eventually(t, 30*time.Second, recordsExactly(a, "rec-a/cam1"))
	// fill the disk to the last byte
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for _, n := range []int{64 << 10, 4 << 10, 512} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	f.Close()
	eventually(t, 20*time.Second, eventsOf(a, "disk.full", "rec-a/cam1"))
}

// Workers whose supervisor never comes back stop on their own after the
// orphan timeout (shortened here to 3 s; 10 min in production), so a
// server taken out of service does not record forever; the next start
// indexes what they wrote.
func TestOrphanedWorkersStop(t *testing.T) {
	t.Setenv(worker.OrphanEnv, "3s")
	a, ws := startWorkerPerCamera(t)
	time.Sleep(2 * time.Second)
	from := time.Now().Add(-time.Second)
	a.KillSupervisor()
	killed := time.Now()
	eventually(t, 20*time.Second, func() string {
		for _, w := range ws {
			if syscall.Kill(w.PID, 0) == nil && !strings.Contains(procState(w.PID), "Z") {
				return fmt.Sprintf("worker %d still runs %v after its supervisor died", w.PID, time.Since(killed).Round(time.Second))
			}
		}
		return ""
	})
	stopped := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, recordsExactly(a, "rec-a/cam1", "rec-a/cam2"))
	// the index holds what the orphans recorded until they stopped
	for _, id := range []string{"rec-a/cam1", "rec-a/cam2"} {
		gaps := gapsOf(t, a, id, from, killed.Add(2*time.Second))
		if len(gaps) > 0 {
			t.Errorf("%s: the orphaned worker's footage is not indexed after the restart: gaps %v (orphans stopped %v after the kill)", id, gaps, stopped.Sub(killed).Round(time.Second))
		}
	}
}

// A worker restarted after its config file was broken on disk (an edit
// not yet reloaded, or one the server refused) records again: workers get
// their settings from the supervisor, never from the file.
func TestWorkerRestartsDespiteBrokenConfigFile(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	a, all4, before := startTwoWorkers(t)
	if err := os.WriteFile(a.Config, []byte("name = \"rec-a\"\n[storage\nsegment = 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	victim := before[0]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, replacedAndRecording(a, victim, all4...))
}

// replacedAndRecording is a condition for eventually: another process
// than victim records victim's cameras, and srv records exactly ids.
func replacedAndRecording(srv *site.Server, victim liveWorker, ids ...string) func() string {
	return func() string {
		now, err := workersOf(srv.DataDir)
		if err != nil {
			return err.Error()
		}
		for _, w := range now {
			if w.PID != victim.PID && strings.Join(w.Cameras, ",") == strings.Join(victim.Cameras, ",") {
				return recordsExactly(srv, ids...)()
			}
		}
		return fmt.Sprintf("no new worker for %v yet: %+v", victim.Cameras, now)
	}
}

// Workers on a full disk lose nothing: 4 cameras in 2 workers fill a
// 40 MB tmpfs (a ballast takes 24 MB) with no free-space floor, so only a
// write that meets ENOSPC makes room. The worker asks the supervisor's
// retention and waits for the space: over the 10 s after the first such
// wait, every camera's footage was indexed at some point (retention
// deletes the oldest meanwhile) without a hole, and no disk.full alarm
// was raised.
func TestWorkersOnAFullDiskLoseNothing(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	dir := testutil.Tmpfs(t, "40m")
	if err := os.WriteFile(filepath.Join(dir, "ballast"), make([]byte, 24<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCameras(t, 4, nil)
	a := startSite(t, site.Spec{Dir: dir, Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 4), Extra: "[recorder]\ncameras_per_worker = 2\n", Storage: "min_free = \"0%\"\n"},
	}}).Server("rec-a")
	killWorkersAfter(t, a)
	ids := []string{"rec-a/cam1", "rec-a/cam2", "rec-a/cam3", "rec-a/cam4"}
	eventually(t, 30*time.Second, recordsExactly(a, ids...))
	waited := func() bool {
		logs, _ := filepath.Glob(filepath.Join(a.DataDir, "workers", "w*.log"))
		for _, l := range logs {
			if b, _ := os.ReadFile(l); strings.Contains(string(b), "the index owner freed space and the write goes on") {
				return true
			}
		}
		return false
	}
	eventually(t, 60*time.Second, func() string {
		var sf syscall.Statfs_t
		if err := syscall.Statfs(dir, &sf); err != nil {
			return err.Error()
		}
		if free := sf.Bavail * uint64(sf.Bsize); free > 2<<20 {
			return fmt.Sprintf("%d bytes still free", free)
		}
		return ""
	})
	from := time.Now().Add(time.Second)
	to := from.Add(10 * time.Second)
	covered := map[string][][2]time.Time{}
	for time.Now().Before(to.Add(3 * time.Second)) { // the index lags by a part and a round
		time.Sleep(250 * time.Millisecond)
		for _, id := range ids {
			var rec api.Recordings
			q := url.Values{"camera": {id}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
			if err := a.GetJSON(context.Background(), "/api/v1/recordings?"+q.Encode(), &rec); err != nil {
				t.Fatalf("recordings of %s: %v", id, err)
			}
			for _, sp := range rec.Spans {
				covered[id] = append(covered[id], [2]time.Time{sp.Start, sp.End})
			}
		}
	}
	for _, id := range ids {
		if holes := holesIn(covered[id], from, to); len(holes) > 0 {
			t.Errorf("%s: footage missing on the full disk: %v", id, holes)
		}
	}
	if msg := eventsOf(a, "disk.full")(); msg == "" {
		t.Errorf("a disk.full alarm was raised: a write was lost")
	}
	if !waited() {
		t.Errorf("no worker write met the full disk: the test did not test it")
	}
}

// holesIn is what of [from, to) no span covers, in stretches longer than
// 100 ms (the spans' ends are a frame apart).
func holesIn(spans [][2]time.Time, from, to time.Time) [][2]time.Time {
	sort.Slice(spans, func(i, j int) bool { return spans[i][0].Before(spans[j][0]) })
	var holes [][2]time.Time
	at := from
	for _, sp := range spans {
		if sp[0].Sub(at) > 100*time.Millisecond && sp[0].Before(to) {
			holes = append(holes, [2]time.Time{at, sp[0]})
		}
		if sp[1].After(at) {
			at = sp[1]
		}
	}
	if to.Sub(at) > 100*time.Millisecond {
		holes = append(holes, [2]time.Time{at, to})
	}
	return holes
}
