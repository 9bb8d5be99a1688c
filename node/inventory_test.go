package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/failover"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// clusterPeer is one node of an in-process site over loopback, plain HTTP
// and unencrypted gossip.
type clusterPeer struct {
	n      *Node
	http   string
	gossip string
	stop   func()
}

func startClusterPeer(t *testing.T, name string, join []string, body string) *clusterPeer {
	t.Helper()
	var ports [2]int
	for i := range ports {
		p, err := site.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	p := &clusterPeer{http: fmt.Sprintf("127.0.0.1:%d", ports[0]), gossip: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	joinLine := ""
	if len(join) > 0 {
		joinLine = fmt.Sprintf("join = [%q]\n", strings.Join(join, `", "`))
	}
	dir := t.TempDir()
	src := fmt.Sprintf("name = %q\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = %q\ngossip = %q\n[cluster]\ninsecure = true\n%s%s",
		name, dir, p.http, p.gossip, joinLine, body)
	cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), src)
	if err != nil {
		t.Fatalf("config of %s: %v", name, err)
	}
	n, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatalf("New %s: %v", name, err)
	}
	p.n = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run %s: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20s", name)
		}
	}
	t.Cleanup(p.stop)
	return p
}

// TestUnrecordedCamerasOfDeadServersListed is the site of issue 12: two
// servers die, their standby has room for one of their six cameras. The
// cluster answer lists all six with the five nobody records, and the page
// shows each of the five in red.
func TestUnrecordedCamerasOfDeadServersListed(t *testing.T) {
	cams := testutil.Cameras(t, camsim.Options{Cameras: 6})
	camerasOf := func(first int) string {
		var b strings.Builder
		b.WriteString("[failover]\nbuddies = [\"rec-s\"]\n")
		for i := first; i < first+3; i++ {
			fmt.Fprintf(&b, "[[camera]]\nname = \"cam%d\"\nurl = %q\ncritical = %v\n", i, cams.URL(i), i == 1)
		}
		return b.String()
	}
	s := startClusterPeer(t, "rec-s", nil, "[capacity]\ncameras = 1\n")
	a := startClusterPeer(t, "rec-a", []string{s.gossip}, camerasOf(1))
	b := startClusterPeer(t, "rec-b", []string{s.gossip}, camerasOf(4))

	recording := func(p *clusterPeer) int {
		n := 0
		for _, c := range p.n.Cameras().Cameras {
			if c.State == "recording" {
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "rec-a and rec-b recording their cameras, rec-s seeing them", func() bool {
		return recording(a) == 3 && recording(b) == 3 && len(s.n.ClusterView()) == 3
	})
	a.stop()
	b.stop()

	var view []api.ServerInfo
	unrecorded := func() []string {
		var ids []string
		for _, si := range view {
			for _, hc := range si.Inventory {
				if hc.Unrecorded != "" {
					ids = append(ids, hc.ID+":"+hc.Unrecorded)
				}
			}
		}
		return ids
	}
	waitFor(t, 30*time.Second, "rec-s adopting one camera and reporting five unrecorded", func() bool {
		view = s.n.ClusterView()
		return len(unrecorded()) == 5 && recording(s) == 1
	})
	total := 0
	for _, si := range view {
		if si.Name == "rec-a" || si.Name == "rec-b" {
			if si.State == "alive" || len(si.Inventory) != 3 {
				t.Errorf("%s: state %s, inventory %+v; want down with 3 cameras", si.Name, si.State, si.Inventory)
			}
		}
		total += len(si.Inventory)
	}
	if total != 6 {
		t.Errorf("site inventory has %d cameras, want 6", total)
	}
	// The critical camera is the one adopted.
	if got := s.n.Cameras().Cameras; len(got) != 1 || got[0].ID != "rec-a/cam1" {
		t.Errorf("rec-s records %+v, want rec-a/cam1 only", got)
	}
	for _, u := range unrecorded() {
		if !strings.HasSuffix(u, ":"+api.UnrecordedCapacity) {
			t.Errorf("unrecorded %s, want reason capacity", u)
		}
	}

	resp, err := http.Get("http://" + s.http + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(page)
	if n := strings.Count(html, `class="camera st-unrecorded"`); n != 5 {
		t.Errorf("page shows %d unrecorded cameras, want 5", n)
	}
	for _, id := range []string{"rec-a/cam2", "rec-a/cam3", "rec-b/cam4", "rec-b/cam5", "rec-b/cam6"} {
		if !strings.Contains(html, `<tr class="camera st-unrecorded" data-camera="`+id+`">`) {
			t.Errorf("page has no red row for %s", id)
		}
	}
	if !strings.Contains(html, "not recorded — no live buddy with capacity") || !strings.Contains(html, "5 cameras not recorded") {
		t.Error("page does not say why the cameras are not recorded, or does not count them")
	}
	if !strings.Contains(html, `data-camera="rec-a/cam1"`) {
		t.Error("page lacks the adopted camera")
	}
}

// TestUnrecordedReasonsMatchPlanner: the API's reasons are the planner's.
func TestUnrecordedReasonsMatchPlanner(t *testing.T) {
	if api.UnrecordedCapacity != failover.ReasonCapacity || api.UnrecordedNoCandidate != failover.ReasonNoCandidateAlive || api.UnrecordedInvalid != failover.ReasonInvalid {
		t.Error("api.Unrecorded* differ from failover.Reason*")
	}
}
