package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/webhook"
)

// Tests of planned moves between live servers (failback, drain, undrain,
// a clean stop): make-before-break leaves neither a hole in the export nor
// a moment when a camera is recorded by nobody.

// coverage polls every server's /api/v1/cameras and notes each instant a
// camera of ids was recorded by none of them.
type coverage struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	holes []string
	polls int
}

// watchCoverage starts polling servers for ids every 100 ms until Stop.
func watchCoverage(servers []*site.Server, ids ...string) *coverage {
	c := &coverage{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			by := map[string][]string{}
			for _, srv := range servers {
				rec, err := srv.Recording(context.Background())
				if err != nil {
					continue // a server that is down records nothing
				}
				for id := range rec {
					by[id] = append(by[id], srv.Name)
				}
			}
			c.mu.Lock()
			c.polls++
			for _, id := range ids {
				if len(by[id]) == 0 {
					c.holes = append(c.holes, fmt.Sprintf("%s %s", time.Now().Format("15:04:05.000"), id))
				}
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// Stop ends the polling and fails t for every instant a camera was
// recorded by nobody.
func (c *coverage) Stop(t *testing.T, what string) {
	t.Helper()
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.polls < 10 {
		t.Errorf("%s: only %d polls of the servers' cameras", what, c.polls)
	}
	if len(c.holes) > 0 {
		t.Errorf("%s: %d of %d polls found a camera recorded by no server: %s", what, len(c.holes), c.polls, strings.Join(c.holes[:min(len(c.holes), 10)], "; "))
	}
}

// exportGaps asks srv to export camera over [from, to) and returns the
// X-Buddyrec-Gaps header of the answer ("[]" when the export has no gap),
// reading the whole file as a viewer would.
func exportGaps(t *testing.T, srv *site.Server, camera string, from, to time.Time) string {
	t.Helper()
	q := url.Values{"camera": {camera}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+srv.HTTP+"/api/v1/export?"+q.Encode(), nil)
	if u, p := srv.Credentials(); u != "" {
		req.SetBasicAuth(u, p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("export %s from %s: %v", camera, srv.Name, err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || n == 0 {
		t.Fatalf("export %s from %s: %s, %d bytes", camera, srv.Name, resp.Status, n)
	}
	return resp.Header.Get("X-Buddyrec-Gaps")
}

// checkNoGap fails t when the export of each camera over [from, to) from
// srv has a gap.
func checkNoGap(t *testing.T, what string, srv *site.Server, from, to time.Time, ids ...string) {
	t.Helper()
	sort.Strings(ids)
	for _, id := range ids {
		if gaps := exportGaps(t, srv, id, from, to); gaps != "[]" {
			t.Errorf("%s: the export of %s from %s to %s has gaps %s", what, id, from.Format("15:04:05.000"), to.Format("15:04:05.000"), gaps)
		}
	}
}

// pairSpec is the site most handover tests use: rec-a records cameras 1
// and 2 of c, rec-b is its buddy, and cameras go home 3 s after it is back.
func pairSpec(c *camsim.Server) site.Spec {
	return site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2), Buddies: []string{"rec-b"}, FailbackAfter: "3s"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}}
}

// pairUp waits until rec-a of a pairSpec site records both its cameras
// and rec-b sees it alive.
func pairUp(t *testing.T, s *site.Site) (a, b *site.Server, ids []string) {
	t.Helper()
	a, b = s.Server("rec-a"), s.Server("rec-b")
	ids = []string{"rec-a/cam1", "rec-a/cam2"}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), sees(b, "rec-a", "alive")))
	return a, b, ids
}

// TestFailbackLeavesNoGap: a home that comes back after a crash takes its
// cameras back make-before-break: the buddy stops only once the home's
// durable footage overlaps its own, so the export across the failback has
// no gap and at every poll some server records each camera.
func TestFailbackLeavesNoGap(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s := startSite(t, pairSpec(c))
	a, b, ids := pairUp(t, s)
	a.Kill()
	eventually(t, 15*time.Second, recordsExactly(b, ids...))
	time.Sleep(3 * time.Second)
	from := time.Now()
	cov := watchCoverage(s.Servers, ids...)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, all(recordsExactly(a, ids...), recordsExactly(b)))
	cov.Stop(t, "failback")
	time.Sleep(4 * time.Second) // the home's footage after the move is durable
	checkNoGap(t, "failback", a, from, indexedTo(t, a, ids...), ids...)
}

// startPSIMSite starts a site whose servers send notices to a recording,
// signature-checking PSIM.
func startPSIMSite(t *testing.T, spec site.Spec) (*site.Site, *psimRecorder) {
	t.Helper()
	psim := &psimRecorder{up: true}
	srv := httptest.NewServer(psim)
	t.Cleanup(srv.Close)
	spec.PSIMURL = srv.URL + "/hooks"
	spec.Dir = t.TempDir()
	spec.Bin = testBin
	s, err := site.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	psim.mu.Lock()
	psim.secret = s.Secret
	psim.mu.Unlock()
	t.Cleanup(func() {
		s.StopAll()
		if t.Failed() {
			for _, srv := range s.Servers {
				b, _ := os.ReadFile(srv.Log)
				lines := strings.Split(string(b), "\n")
				t.Logf("--- last lines of %s:\n%s", srv.Name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	return s, psim
}

// inMaintenance is a condition: srv's cluster view shows name in
// maintenance (or not), alive.
func inMaintenance(srv *site.Server, name string, want bool) func() string {
	return func() string {
		servers, err := srv.Cluster(context.Background())
		if err != nil {
			return err.Error()
		}
		for _, s := range servers {
			if s.Name == name {
				if s.Maintenance == want && s.State == "alive" {
					return ""
				}
				return fmt.Sprintf("%s sees %s %s with maintenance=%v, want alive, maintenance=%v", srv.Name, name, s.State, s.Maintenance, want)
			}
		}
		return fmt.Sprintf("%s does not know %s", srv.Name, name)
	}
}

// TestDrainAndUndrainLeaveNoGap: `buddyrec drain` hands a live server's
// cameras to its buddy make-before-break: every server's page shows it in
// maintenance, the PSIM gets a signed server.maintenance notice naming the
// buddy's address for each camera, the drain survives a restart of the
// drained server, and `buddyrec undrain` brings the cameras back the same
// way. At every poll some server records each camera, and the export
// across the drain, the restart and the undrain has no gap.
func TestDrainAndUndrainLeaveNoGap(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s, psim := startPSIMSite(t, pairSpec(c))
	a, b, ids := pairUp(t, s)
	time.Sleep(4 * time.Second) // a is stable
	from := time.Now()
	cov := watchCoverage(s.Servers, ids...)

	code, out, errOut := runCmd("drain", "-config", a.Config)
	if code != 0 {
		t.Fatalf("buddyrec drain: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("buddyrec drain:\n%s", out)
	for _, id := range ids {
		if !regexp.MustCompile(regexp.QuoteMeta(id) + `\s+rec-b`).MatchString(out) {
			t.Errorf("drain output does not say %s went to rec-b:\n%s", id, out)
		}
	}
	eventually(t, 10*time.Second, all(recordsExactly(b, ids...), recordsExactly(a), inMaintenance(a, "rec-a", true), inMaintenance(b, "rec-a", true)))
	eventually(t, 10*time.Second, func() string {
		n, ok := psim.find(func() []webhook.Notice { return psim.got }, "server.maintenance", "rec-a")
		if !ok {
			return "no server.maintenance notice"
		}
		if len(n.Cameras) != 2 {
			return fmt.Sprintf("server.maintenance names %+v, want both cameras", n.Cameras)
		}
		for _, cam := range n.Cameras {
			if cam.Server != "rec-b" || cam.Address == nil || cam.Address.HTTP != "http://"+b.HTTP || cam.LiveURL != "rtsp://"+b.RTSP+"/"+cam.ID {
				return fmt.Sprintf("server.maintenance camera %+v, want rec-b at http://%s, live rtsp://%s/%s", cam, b.HTTP, b.RTSP, cam.ID)
			}
		}
		return ""
	})
	if n, ok := psim.find(func() []webhook.Notice { return psim.got }, "server.down", "rec-a"); ok {
		t.Errorf("a drain raised server.down: %+v", n)
	}

	// The drain survives a restart: the drained server comes back and
	// leaves the cameras where they are.
	if _, err := os.Stat(filepath.Join(a.DataDir, "maintenance.json")); err != nil {
		t.Errorf("drain not persisted: %v", err)
	}
	a.Stop(30 * time.Second)
	if logText, _ := os.ReadFile(a.Log); !strings.Contains(string(logText), "stopping: cameras handed over") {
		t.Errorf("stopping the drained server waited for its drain_timeout: it had nothing left to hand over")
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, all(inMaintenance(b, "rec-a", true), inMaintenance(a, "rec-a", true)))
	time.Sleep(5 * time.Second) // past settling and failback_after
	if msg := all(recordsExactly(a), recordsExactly(b, ids...))(); msg != "" {
		t.Errorf("after restarting the drained server: %s", msg)
	}

	code, out, errOut = runCmd("undrain", "-config", a.Config)
	if code != 0 {
		t.Fatalf("buddyrec undrain: exit %d\n%s\n%s", code, out, errOut)
	}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), recordsExactly(b), inMaintenance(b, "rec-a", false)))
	cov.Stop(t, "drain, restart, undrain")
	time.Sleep(4 * time.Second)
	checkNoGap(t, "drain, restart, undrain", a, from, indexedTo(t, a, ids...), ids...)
	if _, ok := psim.find(func() []webhook.Notice { return psim.got }, "server.maintenance_ended", "rec-a"); !ok {
		t.Errorf("no server.maintenance_ended notice after the undrain")
	}
}

// events lists the types of srv's last events about server.
func eventTypes(srv *site.Server, limit int) []string {
	var ev struct {
		Events []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"events"`
	}
	srv.GetJSON(context.Background(), fmt.Sprintf("/api/v1/events?limit=%d", limit), &ev)
	var out []string
	for _, e := range ev.Events {
		out = append(out, e.Type)
	}
	return out
}

// TestSIGTERMDrainsThenLeaves: SIGTERM hands the cameras to the buddy
// first (make-before-break), then the server leaves the cluster: the buddy
// sees it "left", logs server.stopped and raises no server.down, and the
// PSIM hears no server.down. When it is started again its cameras come
// back. At every poll some server records each camera, and the export
// across the stop and the return has no gap. A second SIGTERM cuts the
// drain short.
func TestSIGTERMDrainsThenLeaves(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s, psim := startPSIMSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2), Buddies: []string{"rec-b"}, FailbackAfter: "3s", DrainTimeout: "60s"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	ids := []string{"rec-a/cam1", "rec-a/cam2"}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), sees(b, "rec-a", "alive")))
	time.Sleep(4 * time.Second)
	from := time.Now()
	cov := watchCoverage(s.Servers, ids...)
	a.Stop(70 * time.Second) // SIGTERM, and wait for the exit
	if msg := recordsExactly(b, ids...)(); msg != "" {
		t.Errorf("when rec-a has stopped: %s", msg)
	}
	eventually(t, 10*time.Second, sees(b, "rec-a", "left"))
	eventually(t, 10*time.Second, func() string {
		if types := eventTypes(b, 20); !slices.Contains(types, "server.stopped") {
			return fmt.Sprintf("rec-b logged no server.stopped: %v", types)
		}
		return ""
	})
	if types := eventTypes(b, 20); slices.Contains(types, "server.down") {
		t.Errorf("rec-b raised server.down for a clean stop: %v", types)
	}
	logText, _ := os.ReadFile(a.Log)
	if !strings.Contains(string(logText), "stopping: cameras handed over") {
		t.Errorf("rec-a's log does not say the cameras were handed over before the stop")
	}

	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, all(recordsExactly(a, ids...), recordsExactly(b)))
	cov.Stop(t, "SIGTERM and restart")
	time.Sleep(4 * time.Second)
	checkNoGap(t, "SIGTERM and restart", a, from, indexedTo(t, a, ids...), ids...)
	if n, ok := psim.find(func() []webhook.Notice { return psim.got }, "server.down", "rec-a"); ok {
		t.Errorf("the PSIM heard server.down for a clean stop: %+v", n)
	}

	// A second SIGTERM stops at once, although drain_timeout is 60 s and
	// the buddy has not recorded anything yet.
	time.Sleep(4 * time.Second)
	a.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	a.Stop(20 * time.Second)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("rec-a took %v to stop after the second SIGTERM", took)
	}
	logText, _ = os.ReadFile(a.Log)
	if !strings.Contains(string(logText), "second signal: stopping at once") {
		t.Errorf("rec-a's log does not show the second SIGTERM cutting the drain short")
	}
}

// TestRestartFromTheAPI: POST /api/v1/restart (the page's Restart button)
// hands the cameras over, stops cleanly and re-executes the binary in the
// same process (the PID systemd tracks stays); the cameras come back. At
// every poll some server records each camera, and the export across the
// restart has no gap.
func TestRestartFromTheAPI(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s := startSite(t, pairSpec(c))
	a, b, ids := pairUp(t, s)
	time.Sleep(4 * time.Second)
	pid := a.Pid()
	from := time.Now()
	cov := watchCoverage(s.Servers, ids...)
	resp, err := http.Post("http://"+a.HTTP+"/api/v1/restart", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/restart: %s", resp.Status)
	}
	eventually(t, 30*time.Second, func() string {
		logText, _ := os.ReadFile(a.Log)
		if strings.Count(string(logText), "buddyrec server started") < 2 {
			return "rec-a has not started again"
		}
		return ""
	})
	if a.Exited() || a.Pid() != pid {
		t.Fatalf("the restart ended the process (exited %v, pid %d, was %d); it should re-exec in place", a.Exited(), a.Pid(), pid)
	}
	eventually(t, 30*time.Second, all(recordsExactly(a, ids...), recordsExactly(b)))
	cov.Stop(t, "restart")
	logText, _ := os.ReadFile(a.Log)
	if !strings.Contains(string(logText), "stopping: cameras handed over") {
		t.Errorf("rec-a restarted without handing its cameras over first")
	}
	time.Sleep(4 * time.Second)
	checkNoGap(t, "restart", a, from, indexedTo(t, a, ids...), ids...)
}

// TestDrainFromThePageInChromium: a technician drains a server from its
// status page in a real Chromium (the browser's own Origin and
// Sec-Fetch-Site headers pass the cross-origin protection), the buddy's
// page shows it as "maintenance" and records its cameras, and Undrain on
// the page brings them back. The screenshot is kept as an artefact.
func TestDrainFromThePageInChromium(t *testing.T) {
	ctx := testutil.Browser(t, 90*time.Second)
	chromium := testutil.NeedTool(t, "chromium")
	c := startCameras(t, 2, nil)
	s := startSite(t, pairSpec(c))
	a, b, ids := pairUp(t, s)
	time.Sleep(4 * time.Second)

	click := func(button string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate("http://"+a.HTTP+"/"),
			chromedp.WaitVisible(button),
			chromedp.Click(button),
			chromedp.WaitReady(`section#ops`),
		); err != nil {
			t.Fatalf("click %s on rec-a's page: %v", button, err)
		}
	}
	click(`form[action="/drain"] button`)
	eventually(t, 15*time.Second, all(recordsExactly(b, ids...), recordsExactly(a), inMaintenance(b, "rec-a", true)))
	dom := string(testutil.Chromium(t, chromium, "--dump-dom", "http://"+b.HTTP+"/"))
	if !strings.Contains(dom, `data-server="rec-a" data-state="maintenance"`) {
		t.Errorf("rec-b's page does not show rec-a in maintenance")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+a.HTTP+"/")); err != nil {
		t.Fatal(err)
	}
	ops, err := chromedp.Run(ctx, chromedp.Text(`section#ops`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ops, "maintenance") || !strings.Contains(ops, "2 cameras handed over") {
		t.Errorf("rec-a's page says %q, want maintenance with 2 cameras handed over", ops)
	}
	testutil.Screenshot(t, chromium, "http://"+a.HTTP+"/", "status-page-maintenance.png")
	click(`form[action="/undrain"] button`)
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), recordsExactly(b), inMaintenance(b, "rec-a", false)))
}
