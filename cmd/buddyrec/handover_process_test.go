package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/site"
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

// TestFailbackLeavesNoGap: a home that comes back after a crash takes its
// cameras back make-before-break: the buddy stops only once the home's
// durable footage overlaps its own, so the export across the failback has
// no gap and at every poll some server records each camera.
func TestFailbackLeavesNoGap(t *testing.T) {
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2), Buddies: []string{"rec-b"}, FailbackAfter: "3s"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	ids := []string{"rec-a/cam1", "rec-a/cam2"}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), sees(b, "rec-a", "alive")))
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
	time.Sleep(3 * time.Second) // the home's footage after the move is durable
	checkNoGap(t, "failback", a, from, time.Now().Add(-1500*time.Millisecond), ids...)
}
