package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/webhook"
)

// These tests run real `buddyrec run` processes on loopback with simulated
// cameras, kill them with signals, and check what a technician would: who
// records which camera, per the servers' own APIs, and what is on disk.
//
// The long ones that only wait on their own site call t.Parallel, and
// processTestParallel of them run at once. Serial: tests that set the
// environment their servers inherit (t.Setenv), that measure CPU or
// descriptors (hostile_test.go), that build networks (partition_test.go),
// that drive Chromium, and those whose timing a second site's load would
// change.

var testBin string

// durableLag is how far behind the present a test may expect the index
// to reach: what storage promises to make durable within a part plus a
// sync round (each 1 s in these tests; their phases are independent),
// plus half a second for the commit, which in a worker process travels
// to the supervisor first.
const durableLag = 2500 * time.Millisecond

// indexedTo is the end of a range for a test to check for gaps: the
// moment durableLag ago, returned once srv's timeline of each camera of
// ids reaches it. On a loaded machine a commit (its fdatasync, and from
// a worker the trip to the supervisor) can come later than durableLag
// allows; CI saw a range's last 0.3 s, not yet indexed, reported as a
// gap. Footage that is late is not lost, so the tests wait for it; what
// is lost stays a gap, and a tail that never comes fails here.
func indexedTo(t *testing.T, srv *site.Server, ids ...string) time.Time {
	t.Helper()
	to := time.Now().Add(-durableLag)
	eventually(t, 20*time.Second, func() string {
		for _, id := range ids {
			var rec api.Recordings
			q := url.Values{"camera": {id}, "from": {to.Add(-10 * time.Second).UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
			if err := srv.GetJSON(context.Background(), "/api/v1/recordings?"+q.Encode(), &rec); err != nil {
				return fmt.Sprintf("%s: recordings of %s: %v", srv.Name, id, err)
			}
			if n := len(rec.Spans); n == 0 || rec.Spans[n-1].End.Before(to) {
				return fmt.Sprintf("%s's timeline of %s does not reach %s yet: %+v", srv.Name, id, to.Format("15:04:05.000"), rec.Spans)
			}
		}
		return ""
	})
	return to
}

// processTestParallel is how many parallel process tests run at once
// unless -parallel says otherwise: three, or two (GOMAXPROCS on the 2-core
// CI machine, go test's default) under the race detector.
//
// Why three: the package's tests add up to some 880 s, nearly all of it
// waiting on footage, failovers and timeouts (user and system CPU together
// 140 s), so two at a time took 583–586 s on 2 cores: within a few
// seconds of go test's default 10 min timeout, which the README's
// `go test ./...` keeps. A third fits in the idle CPU. Under -race every
// process needs several times the CPU, and a third site would compete
// with the two for it, which is what the tests' timing bounds must not
// see; .ci/run gives that run a longer timeout instead.
func processTestParallel() int {
	if raceEnabled {
		return 2
	}
	return 3
}

// setTestParallel applies processTestParallel when the command line left
// -parallel alone.
func setTestParallel() error {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if given {
		return nil
	}
	return flag.Set("test.parallel", strconv.Itoa(processTestParallel()))
}

func TestMain(m *testing.M) {
	code := func() int {
		if err := setTestParallel(); err != nil {
			fmt.Fprintln(os.Stderr, "set -parallel for the process tests:", err)
			return 1
		}
		dir, err := os.MkdirTemp("", "buddyrec-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := site.ModuleRoot()
		if err == nil {
			testBin, err = site.BuildBinary(context.Background(), root, dir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "build buddyrec for the process tests:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func startCameras(t *testing.T, n int, faults map[int]camsim.Fault) *camsim.Server {
	t.Helper()
	cams := testutil.Cameras(t, camsim.Options{Cameras: n, Faults: faults})
	return cams
}

func cams(c *camsim.Server, from, to int, critical ...int) []site.Camera {
	crit := map[int]bool{}
	for _, i := range critical {
		crit[i] = true
	}
	var out []site.Camera
	for i := from; i <= to; i++ {
		out = append(out, site.Camera{Name: fmt.Sprintf("cam%d", i), URL: c.URL(i), Critical: crit[i]})
	}
	return out
}

// startSite writes and starts spec's site in spec.Dir (a fresh temporary
// folder when empty, e.g. a tmpfs of the test's) and stops it, with its
// logs shown on failure, when the test ends.
func startSite(t *testing.T, spec site.Spec) *site.Site {
	t.Helper()
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	if spec.Bin == "" {
		spec.Bin = testBin
	}
	s, err := site.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.StopAll()
		if t.Failed() || os.Getenv("BUDDYREC_TEST_LOGS") != "" {
			for _, srv := range s.Servers {
				b, _ := os.ReadFile(srv.Log)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 40 && os.Getenv("BUDDYREC_TEST_LOGS") == "" {
					lines = lines[len(lines)-40:]
				}
				t.Logf("--- last lines of %s:\n%s", srv.Name, strings.Join(lines, "\n"))
			}
		}
	})
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually is testutil.EventuallyMsg under the name the process tests use.
var eventually = testutil.EventuallyMsg

// recordsExactly is a condition: srv records exactly the camera ids want.
func recordsExactly(srv *site.Server, want ...string) func() string {
	return func() string {
		rec, err := srv.Recording(context.Background())
		if err != nil {
			return fmt.Sprintf("%s: %v", srv.Name, err)
		}
		if os.Getenv("BUDDYREC_TEST_LOGS") != "" {
			all, _ := srv.Cameras(context.Background())
			fmt.Printf("%s %s: %+v\n", time.Now().Format("15:04:05.000"), srv.Name, all)
		}
		var got []string
		for id := range rec {
			got = append(got, id)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Sprintf("%s records %v, want %v", srv.Name, got, want)
		}
		return ""
	}
}

func sees(srv *site.Server, name string, state buddy.State) func() string {
	return func() string {
		servers, err := srv.Cluster(context.Background())
		if err != nil {
			return err.Error()
		}
		for _, s := range servers {
			if s.Name == name {
				if s.State == state {
					return ""
				}
				return fmt.Sprintf("%s sees %s as %s, want %s", srv.Name, name, s.State, state)
			}
		}
		return fmt.Sprintf("%s does not know %s", srv.Name, name)
	}
}

func all(conds ...func() string) func() string {
	return func() string {
		for _, c := range conds {
			if m := c(); m != "" {
				return m
			}
		}
		return ""
	}
}

// TestMirroredFailoverAndFailback: kill -9 a live server, its buddy records
// all its cameras; restart it, the cameras come home; the killed server's
// footage on disk is indexed and playable.
func TestMirroredFailoverAndFailback(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	const camPassword = "cam2-Secret-pw"
	c := startCameras(t, 3, map[int]camsim.Fault{2: {User: "admin", Pass: camPassword}})
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2), Buddies: []string{"rec-b"}, FailbackAfter: "3s"},
		{Name: "rec-b", Cameras: cams(c, 3, 3), Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), recordsExactly(b, "rec-b/cam3"), sees(b, "rec-a", "alive")))
	time.Sleep(2500 * time.Millisecond) // mid-segment, a few parts written

	killedAt := time.Now()
	a.Kill()
	eventually(t, 10*time.Second, all(sees(b, "rec-a", "dead"), recordsExactly(b, "rec-a/cam1", "rec-a/cam2", "rec-b/cam3")))
	camsB, _ := b.Cameras(context.Background())
	for _, cam := range camsB {
		if cam.Home == "rec-a" && cam.RecordedBy != "rec-b" {
			t.Errorf("adopted camera %s: recorded_by %q, want rec-b", cam.ID, cam.RecordedBy)
		}
	}
	var cl struct {
		Servers []struct {
			Name        string   `json:"name"`
			AdoptedFrom []string `json:"adopted_from"`
		} `json:"servers"`
	}
	b.GetJSON(context.Background(), "/api/v1/cluster", &cl)
	for _, srv := range cl.Servers {
		if srv.Name == "rec-b" && strings.Join(srv.AdoptedFrom, ",") != "rec-a" {
			t.Errorf("cluster says rec-b adopted from %v, want [rec-a]", srv.AdoptedFrom)
		}
	}

	// The adopter re-streams the adopted camera live.
	ffprobe, haveFFprobe := testutil.LookTool(t, "ffprobe")
	if haveFFprobe {
		out, err := exec.Command(ffprobe, "-v", "error", "-rw_timeout", "10000000", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0", "rtsp://"+b.RTSP+"/rec-a/cam1").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "h264,1280") {
			t.Errorf("live re-stream of the adopted camera on rec-b: %v\n%s", err, out)
		}
	}

	// The killed server's disk: every segment indexed and playable.
	// A crash loses at most the part being filled (1 s here) of each
	// camera's footage; on this shared 2-core machine the writer may also
	// trail the camera by a moment, hence the margin.
	for cam, end := range checkDisk(t, a.DataDir, "rec-a") {
		lost := killedAt.Sub(end)
		t.Logf("%s: %.2fs of footage lost to the kill -9", cam, lost.Seconds())
		if lost > 2*time.Second {
			t.Errorf("%s: footage ends %.2fs before the kill -9; at most one part (1s) may be lost", cam, lost.Seconds())
		}
	}
	outageStart := time.Now().Add(-5 * time.Second)
	time.Sleep(2 * time.Second)

	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), recordsExactly(b, "rec-b/cam3")))
	eventually(t, 10*time.Second, func() string {
		var ev struct {
			Events []struct {
				Type    string   `json:"type"`
				Cameras []string `json:"cameras"`
			} `json:"events"`
		}
		a.GetJSON(context.Background(), "/api/v1/events?limit=20", &ev)
		for _, e := range ev.Events {
			if e.Type == "failback.completed" && len(e.Cameras) == 2 {
				return ""
			}
		}
		return fmt.Sprintf("rec-a reports no failback.completed of its 2 cameras: %+v", ev.Events)
	})

	// One export request to the home returns the whole range, including
	// what the buddy recorded during the outage.
	time.Sleep(2 * time.Second)
	var plan struct {
		Pieces []struct {
			Server     string `json:"server"`
			RecordedBy string `json:"recorded_by"`
		} `json:"pieces"`
	}
	q := fmt.Sprintf("/api/v1/export/plan?camera=rec-a/cam1&from=%s&to=%s", outageStart.UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
	if err := a.GetJSON(context.Background(), q, &plan); err != nil {
		t.Fatal(err)
	}
	byBuddy := false
	for _, p := range plan.Pieces {
		byBuddy = byBuddy || p.RecordedBy == "rec-b"
	}
	if !byBuddy {
		t.Errorf("export plan from rec-a lacks rec-b's footage of the outage: %+v", plan.Pieces)
	}
	exp := filepath.Join(t.TempDir(), "export.mp4")
	if err := download("http://"+a.HTTP+strings.Replace(q, "/export/plan?", "/export?", 1), exp); err != nil {
		t.Fatal(err)
	}
	if haveFFprobe {
		out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", exp).CombinedOutput()
		if err != nil {
			t.Errorf("ffprobe the export across the failover: %v\n%s", err, out)
		} else if frames, _ := strconv.Atoi(strings.TrimSpace(string(out))); frames < 5*25 {
			t.Errorf("export across the failover holds %d frames, want several seconds' worth (≥125)", frames)
		}
	}

	// Footage recorded by rec-b while rec-a was down is in rec-b's index
	// under rec-a's camera, recorded_by rec-b.
	b.Stop(10 * time.Second)
	st, err := storage.Open(storage.Options{Dir: b.DataDir, Server: "rec-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	segs, err := st.Segments("rec-a/cam1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || len(segs) == 0 {
		t.Fatalf("rec-b has no footage of rec-a/cam1: %v", err)
	}
	if segs[0].Home != "rec-a" || segs[0].RecordedBy != "rec-b" {
		t.Errorf("adopted footage indexed as home=%s recorded_by=%s", segs[0].Home, segs[0].RecordedBy)
	}

	// Secrets never reach a log: the camera password (which rec-b got from
	// rec-a through gossip and used), the gossip key, the webhook secret.
	key, _ := os.ReadFile(s.KeyFile)
	for _, srv := range s.Servers {
		logText, _ := os.ReadFile(srv.Log)
		for name, secret := range map[string]string{"camera password": camPassword, "gossip key": strings.TrimSpace(string(key)), "webhook secret": s.Secret} {
			if strings.Contains(string(logText), secret) {
				t.Errorf("%s's log contains the %s", srv.Name, name)
			}
		}
	}
}

// checkDisk opens a stopped server's data dir (running crash recovery),
// checks every indexed segment exists and plays, and returns where each
// camera's footage ends.
func checkDisk(t *testing.T, dir, server string) map[string]time.Time {
	t.Helper()
	ffprobe, haveFFprobe := testutil.LookTool(t, "ffprobe")
	st, err := storage.Open(storage.Options{Dir: dir, Server: server})
	if err != nil {
		t.Fatalf("reopen %s after kill -9: %v", dir, err)
	}
	defer st.Close()
	camsList, err := st.Cameras()
	if err != nil || len(camsList) == 0 {
		t.Fatalf("no cameras in the index after kill -9: %v", err)
	}
	indexed := map[string]bool{}
	ends := map[string]time.Time{}
	for _, cam := range camsList {
		segs, err := st.Segments(cam, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range segs {
			indexed[seg.File] = true
			if seg.End.After(ends[cam]) {
				ends[cam] = seg.End
			}
			if seg.Open {
				t.Errorf("%s still open after recovery", seg.File)
			}
			if !haveFFprobe {
				if _, err := os.Stat(st.SegmentPath(seg)); err != nil {
					t.Errorf("indexed segment missing: %v", err)
				}
				continue
			}
			out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json", st.SegmentPath(seg)).Output()
			if err != nil {
				t.Errorf("ffprobe %s after kill -9: %v", seg.File, err)
				continue
			}
			var p struct {
				Format struct {
					Duration string `json:"duration"`
				} `json:"format"`
			}
			json.Unmarshal(out, &p)
			if p.Format.Duration == "" {
				t.Errorf("%s has no duration", seg.File)
			}
		}
	}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".mp4") {
			rel, _ := filepath.Rel(dir, p)
			if !indexed[rel] {
				t.Errorf("file %s on disk is not indexed", rel)
			}
		}
		return nil
	})
	return ends
}

// TestSpreadServersIntoLimitedStandby: two live servers fail into one
// standby that can carry three cameras: critical first, the rest unplaced
// with an alarm.
func TestSpreadServersIntoLimitedStandby(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 4, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2, 2), Buddies: []string{"rec-s"}},
		{Name: "rec-b", Cameras: cams(c, 3, 4, 4), Buddies: []string{"rec-s"}},
		{Name: "rec-s", Capacity: 3},
	}})
	a, b, sb := s.Server("rec-a"), s.Server("rec-b"), s.Server("rec-s")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), recordsExactly(b, "rec-b/cam3", "rec-b/cam4"), sees(sb, "rec-a", "alive"), sees(sb, "rec-b", "alive")))
	a.Kill()
	eventually(t, 10*time.Second, recordsExactly(sb, "rec-a/cam1", "rec-a/cam2"))
	b.Kill()
	// Capacity 3: both critical cameras (cam2, cam4), then one more in a
	// stable order; the fourth cannot be placed.
	eventually(t, 10*time.Second, func() string {
		rec, err := sb.Recording(context.Background())
		if err != nil {
			return err.Error()
		}
		if len(rec) != 3 || !rec["rec-a/cam2"] || !rec["rec-b/cam4"] {
			return fmt.Sprintf("standby records %v, want 3 including both critical cameras", rec)
		}
		return ""
	})
	var ev struct {
		Events []struct {
			Type    string   `json:"type"`
			Cameras []string `json:"cameras"`
		} `json:"events"`
	}
	eventually(t, 5*time.Second, func() string {
		sb.GetJSON(context.Background(), "/api/v1/events?limit=100", &ev)
		for _, e := range ev.Events {
			if e.Type == "capacity.exceeded" && len(e.Cameras) == 1 {
				return ""
			}
		}
		return fmt.Sprintf("no capacity.exceeded alarm naming the one unplaced camera: %+v", ev.Events)
	})
}

// TestSpreadCamerasAndNPlus2: with cameras = "critical" only critical
// cameras move; with the first buddy dead too, the second buddy takes over.
func TestSpreadCamerasAndNPlus2(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 4, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 3, 1), Buddies: []string{"rec-b", "rec-c"}, Mode: "critical"},
		{Name: "rec-b", Cameras: cams(c, 4, 4), Buddies: []string{"rec-c"}},
		{Name: "rec-c"},
	}})
	a, b, cc := s.Server("rec-a"), s.Server("rec-b"), s.Server("rec-c")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2", "rec-a/cam3"), recordsExactly(b, "rec-b/cam4"), sees(cc, "rec-a", "alive"), sees(cc, "rec-b", "alive")))
	b.Kill()
	eventually(t, 10*time.Second, recordsExactly(cc, "rec-b/cam4"))
	a.Kill()
	// rec-a's first buddy (rec-b) is dead: the critical camera goes to
	// rec-c; the non-critical ones stay unrecorded by design.
	eventually(t, 10*time.Second, recordsExactly(cc, "rec-a/cam1", "rec-b/cam4"))
}

// TestHungServerActsLikeACrash: SIGSTOP a server; its buddy adopts; SIGCONT
// and it takes its cameras back once stable.
func TestHungServerActsLikeACrash(t *testing.T) {
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}, FailbackAfter: "4s"},
		{Name: "rec-b", Cameras: cams(c, 2, 2), Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2"), sees(b, "rec-a", "alive")))
	if err := a.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, all(sees(b, "rec-a", "dead"), recordsExactly(b, "rec-a/cam1", "rec-b/cam2")))
	time.Sleep(time.Second) // hung well past detection
	if err := a.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Woken up, rec-a is alive again but not yet proven healthy: rec-b
	// keeps the camera (no thrash) until failback_after has passed.
	eventually(t, 10*time.Second, all(sees(b, "rec-a", "alive"), recordsExactly(b, "rec-a/cam1", "rec-b/cam2")))
	eventually(t, 30*time.Second, all(sees(b, "rec-a", "alive"), recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2")))
}

// TestWrongGossipKeyRefused: a server with another key cannot join and
// says why.
func TestWrongGossipKeyRefused(t *testing.T) {
	c := startCameras(t, 1, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}},
		{Name: "rec-b"},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, sees(b, "rec-a", "alive"))
	b.Stop(10 * time.Second)
	other := filepath.Join(filepath.Dir(b.Config), "other.key")
	if err := os.WriteFile(other, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(b.Config)
	os.WriteFile(b.Config, []byte(strings.Replace(string(cfg), s.KeyFile, other, 1)), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testBin, "run", "-config", b.Config).CombinedOutput()
	if err == nil {
		t.Fatalf("a server with the wrong gossip key started:\n%s", out)
	}
	if !strings.Contains(string(out), "gossip key mismatch") {
		t.Errorf("the refusal does not say why:\n%s", out)
	}
	if strings.Contains(string(out), "MDEyMzQ1Njc4OWFiY2RlZjAx") {
		t.Errorf("the refusal prints the key")
	}
	_ = a
}

func download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return saveBody(resp.Body, path)
}

// TestStatusPageShowsFailover: two real servers; kill one; the survivor's
// page, rendered by a real headless Chromium, shows the dead server, the
// alarm and the adopted cameras. The screenshot is kept as an artefact.
func TestStatusPageShowsFailover(t *testing.T) {
	chromium := testutil.NeedTool(t, "chromium")
	c := startCameras(t, 3, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2, 1), Buddies: []string{"rec-b"}},
		{Name: "rec-b", Cameras: cams(c, 3, 3), Buddies: []string{"rec-a"}},
		{Name: "rec-c"},
	}})
	a, b, cc := s.Server("rec-a"), s.Server("rec-b"), s.Server("rec-c")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), sees(b, "rec-a", "alive"), sees(cc, "rec-a", "alive")))
	time.Sleep(2 * time.Second) // some footage on the timeline
	a.Kill()
	eventually(t, 10*time.Second, all(recordsExactly(b, "rec-a/cam1", "rec-a/cam2", "rec-b/cam3"), sees(cc, "rec-a", "dead")))

	// The adopter's page, and that of a server with no part in the
	// failover: both show the whole site.
	for _, srv := range []*site.Server{b, cc} {
		dom := string(testutil.Chromium(t, chromium, "--dump-dom", "http://"+srv.HTTP+"/"))
		for _, want := range []string{
			`data-server="rec-a" data-state="DEAD"`, // the dead server, visibly dead
			"own + adopted from rec-a",              // what the adopter records now
			`data-camera="rec-a/cam1"`, `data-camera="rec-a/cam2"`,
			"server rec-a is down", // the alarm, raised by rec-b
			`action="/ack"`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("%s's page lacks %q", srv.Name, want)
			}
		}
		if strings.Contains(dom, s.Secret) {
			t.Errorf("%s's page shows a secret", srv.Name)
		}
	}
	testutil.Screenshot(t, chromium, "http://"+cc.HTTP+"/", "status-page-failover.png")
}

// psimRecorder is a PSIM stand-in: it verifies every notice's signature
// and remembers each attempt; while down it answers 503.
type psimRecorder struct {
	secret string
	mu     sync.Mutex
	up     bool
	tried  []webhook.Notice // every attempt, accepted or not
	got    []webhook.Notice // accepted, in arrival order
	badSig int
}

func (p *psimRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := webhook.Verify(p.secret, r.Header, body, time.Minute); err != nil {
		p.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var n webhook.Notice
	json.Unmarshal(body, &n)
	if r.Header.Get("webhook-id") != n.ID {
		p.badSig++
	}
	p.tried = append(p.tried, n)
	if !p.up {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	p.got = append(p.got, n)
	w.WriteHeader(http.StatusNoContent)
}

func (p *psimRecorder) find(list func() []webhook.Notice, typ, failed string) (webhook.Notice, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range list() {
		if n.Type == typ && n.FailedServer == failed {
			return n, true
		}
	}
	return webhook.Notice{}, false
}

// TestTakeoverNoticeSurvivesPSIMOutageAndAdopterCrash: the PSIM is down
// while a failover happens, the adopting server is killed -9 and restarted
// before the PSIM comes back: the takeover notice still arrives, signed,
// with the webhook-id it was first tried with.
func TestTakeoverNoticeSurvivesPSIMOutageAndAdopterCrash(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	psim := &psimRecorder{}
	srv := httptest.NewServer(psim)
	defer srv.Close()
	spec := site.Spec{PSIMURL: srv.URL + "/hooks", Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"},
			Extra: "[[aspect]]\nkind = \"io\"\nname = \"door-io-1\"\naddress = \"10.0.2.5\"\npassword = \"relay-secret\"\n"},
		{Name: "rec-b", Cameras: cams(c, 2, 2), Buddies: []string{"rec-a"}},
	}}
	spec.Dir = t.TempDir()
	if spec.Bin == "" {
		spec.Bin = testBin
	}
	s, err := site.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	psim.mu.Lock()
	psim.secret = s.Secret
	psim.mu.Unlock()
	t.Cleanup(s.StopAll)
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), sees(b, "rec-a", "alive")))
	a.Kill()
	eventually(t, 10*time.Second, recordsExactly(b, "rec-a/cam1", "rec-b/cam2"))
	// Notices go out in order per target: the first, server.down, is
	// retried while the PSIM is down and holds the rest behind it.
	var first webhook.Notice
	eventually(t, 10*time.Second, func() string {
		n, ok := psim.find(func() []webhook.Notice { return psim.tried }, "server.down", "rec-a")
		if !ok {
			return "no notice was tried"
		}
		first = n
		return ""
	})
	if first.Server != "rec-b" {
		t.Errorf("server.down announced by %q, want rec-b (rec-a's first buddy)", first.Server)
	}
	b.Kill()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, recordsExactly(b, "rec-a/cam1", "rec-b/cam2"))
	psim.mu.Lock()
	psim.up = true
	psim.mu.Unlock()
	eventually(t, 30*time.Second, func() string {
		psim.mu.Lock()
		defer psim.mu.Unlock()
		for _, n := range psim.got {
			if n.ID == first.ID {
				return ""
			}
		}
		return fmt.Sprintf("notice %s not delivered after the PSIM came back; delivered: %d", first.ID, len(psim.got))
	})
	var takeover webhook.Notice
	eventually(t, 30*time.Second, func() string {
		n, ok := psim.find(func() []webhook.Notice { return psim.got }, "failover.completed", "rec-a")
		if !ok {
			return "no failover.completed notice delivered"
		}
		takeover = n
		return ""
	})
	if takeover.Server != "rec-b" || takeover.Address == nil || takeover.Address.HTTP != "http://"+b.HTTP ||
		len(takeover.Cameras) != 1 || takeover.Cameras[0].ID != "rec-a/cam1" || takeover.Cameras[0].LiveURL != "rtsp://"+b.RTSP+"/rec-a/cam1" {
		t.Errorf("takeover notice does not name the adopter, its address and the cameras: %+v", takeover)
	}
	// Every live URL in the notice plays (issue 12 saw a 404).
	if ffprobe, ok := testutil.LookTool(t, "ffprobe"); ok {
		for _, cam := range takeover.Cameras {
			out, err := exec.Command(ffprobe, "-v", "error", "-rw_timeout", "10000000", "-rtsp_transport", "tcp",
				"-show_entries", "stream=codec_name", "-of", "csv=p=0", cam.LiveURL).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "h264") {
				t.Errorf("live URL %s of the takeover notice does not play: %v\n%s", cam.LiveURL, err, out)
			}
		}
	}
	if len(takeover.Aspects) != 1 || takeover.Aspects[0].Kind != "io" || takeover.Aspects[0].Name != "door-io-1" {
		t.Errorf("takeover notice lacks rec-a's aspect: %+v", takeover.Aspects)
	}
	var held struct {
		Aspects []struct{ Kind, Name, Home, HeldBy string } `json:"aspects"`
	}
	b.GetJSON(context.Background(), "/api/v1/cameras", &held)
	if len(held.Aspects) != 1 || held.Aspects[0].Home != "rec-a" || held.Aspects[0].Name != "door-io-1" {
		t.Errorf("rec-b's API does not list the adopted aspect: %+v", held.Aspects)
	}
	psim.mu.Lock()
	defer psim.mu.Unlock()
	if psim.badSig > 0 {
		t.Errorf("%d notices failed signature verification", psim.badSig)
	}
	for _, n := range psim.tried {
		if strings.Contains(fmt.Sprint(n), "relay-secret") {
			t.Errorf("a notice carries an aspect's password: %+v", n)
		}
	}
	for _, n := range psim.got {
		if n.ID == first.ID && (n.Type != first.Type || n.Server != first.Server) {
			t.Errorf("a retry with the same webhook-id carries another notice: %+v vs %+v", n, first)
		}
	}
}
