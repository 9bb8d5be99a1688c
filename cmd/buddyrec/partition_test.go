package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// netLab is a small test network made of network namespaces, private to
// this test: a bridge in a "lan" namespace, one namespace per server
// (10.77.0.11, .12, ...) and a leg from the test's own namespace
// (10.77.0.1) where the cameras run. Partition cuts the servers off from
// each other while every one of them still reaches the cameras, which is
// what a broken switch between two server rooms looks like.
type netLab struct {
	t       *testing.T
	lan     string
	servers []string // namespace names
	ports   []string // the servers' bridge ports, in the lan namespace
	rootIf  string
}

func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetLab(t *testing.T, servers int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("BUDDYREC_REQUIRE_TOOLS") != "" {
			t.Fatal("the partition test needs root for network namespaces")
		}
		t.Skip("the partition test needs root for network namespaces")
	}
	testutil.NeedTool(t, "ip")
	testutil.NeedTool(t, "bridge")
	id := os.Getpid() % 10000
	l := &netLab{t: t, lan: fmt.Sprintf("brlan%d", id), rootIf: fmt.Sprintf("brr%d", id)}
	t.Cleanup(l.close)
	l.ip("netns", "add", l.lan)
	l.ip("-n", l.lan, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.lan, "link", "set", "br0", "up")
	l.ip("link", "add", l.rootIf, "type", "veth", "peer", "name", "rootleg")
	l.ip("link", "set", "rootleg", "netns", l.lan)
	l.ip("-n", l.lan, "link", "set", "rootleg", "master", "br0", "up")
	l.ip("addr", "add", "10.77.0.1/24", "dev", l.rootIf)
	l.ip("link", "set", l.rootIf, "up")
	for i := 0; i < servers; i++ {
		ns := fmt.Sprintf("brs%d-%d", id, i)
		port := fmt.Sprintf("leg%d", i)
		l.ip("netns", "add", ns)
		l.servers, l.ports = append(l.servers, ns), append(l.ports, port)
		l.ip("-n", ns, "link", "set", "lo", "up")
		l.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port)
		l.ip("-n", ns, "link", "set", port, "netns", l.lan)
		l.ip("-n", l.lan, "link", "set", port, "master", "br0", "up")
		l.ip("-n", ns, "addr", "add", fmt.Sprintf("10.77.0.%d/24", 11+i), "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
	}
	return l
}

// partition isolates (or reconnects) the servers' bridge ports from one
// another; the leg to the cameras stays open.
func (l *netLab) partition(on bool) {
	l.t.Helper()
	state := "off"
	if on {
		state = "on"
	}
	for _, p := range l.ports {
		if out, err := exec.Command("ip", "netns", "exec", l.lan, "bridge", "link", "set", "dev", p, "isolated", state).CombinedOutput(); err != nil {
			l.t.Fatalf("bridge link set %s isolated %s: %v\n%s", p, state, err, out)
		}
	}
}

func (l *netLab) close() {
	for _, ns := range append(l.servers, l.lan) {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "link", "del", l.rootIf).Run()
}

// TestPartitionRecordsEverythingThenHeals: while two servers cannot see
// each other, each records its own and the other's cameras (duplicate
// footage, nothing unrecorded); once the partition heals, each camera is
// recorded by exactly one server again.
func TestPartitionRecordsEverythingThenHeals(t *testing.T) {
	lab := newNetLab(t, 2)
	cams, err := camsim.Start(context.Background(), camsim.Options{Listen: "10.77.0.1:0", Cameras: 2, ClipDir: "../../testdata"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cams.Close)
	spec := site.Spec{User: "tech", Password: "partition-test-pw", Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: []site.Camera{{Name: "cam1", URL: cams.URL(1)}}, Buddies: []string{"rec-b"}, FailbackAfter: "3s",
			Host: "10.77.0.11", Exec: []string{"ip", "netns", "exec", lab.servers[0]}},
		{Name: "rec-b", Cameras: []site.Camera{{Name: "cam2", URL: cams.URL(2)}}, Buddies: []string{"rec-a"}, FailbackAfter: "3s",
			Host: "10.77.0.12", Exec: []string{"ip", "netns", "exec", lab.servers[1]}},
	}}
	s := startSite(t, spec)
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2"), sees(a, "rec-b", "alive"), sees(b, "rec-a", "alive")))

	start := time.Now()
	lab.partition(true)
	eventually(t, 15*time.Second, all(sees(a, "rec-b", "dead"), sees(b, "rec-a", "dead"),
		recordsExactly(a, "rec-a/cam1", "rec-b/cam2"), recordsExactly(b, "rec-a/cam1", "rec-b/cam2")))

	t.Logf("partition: both servers record both cameras after %.1fs", time.Since(start).Seconds())
	start = time.Now()
	lab.partition(false)
	eventually(t, 30*time.Second, all(sees(a, "rec-b", "alive"), sees(b, "rec-a", "alive"),
		recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2")))
	t.Logf("healed: one recorder per camera again after %.1fs", time.Since(start).Seconds())
}

// TestBackfillAutoOverALink: backfill_mbps "auto" (the default) over a
// link that is not loopback. The home, in a namespace of its own, reaches
// its buddy over a veth (which the kernel reports at 10000 Mbit/s):
// after a failover and failback it copies back the buddy's footage at
// half that link, says so on the API, and ends whole.
func TestBackfillAutoOverALink(t *testing.T) {
	// parallel: only after the serial partition test, whose lab's names
	// and addresses this one reuses, has removed its own
	t.Parallel()
	lab := newNetLab(t, 2)
	cams, err := camsim.Start(context.Background(), camsim.Options{Listen: "10.77.0.1:0", Cameras: 2, ClipDir: "../../testdata"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cams.Close)
	s := startSite(t, site.Spec{User: "tech", Password: "backfill-link-pw", Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: []site.Camera{{Name: "cam1", URL: cams.URL(1)}, {Name: "cam2", URL: cams.URL(2)}},
			Buddies: []string{"rec-b"}, FailbackAfter: "3s",
			Host: "10.77.0.11", Exec: []string{"ip", "netns", "exec", lab.servers[0]}},
		{Name: "rec-b", Buddies: []string{"rec-a"},
			Host: "10.77.0.12", Exec: []string{"ip", "netns", "exec", lab.servers[1]}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	ids := []string{"rec-a/cam1", "rec-a/cam2"}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), sees(b, "rec-a", "alive")))
	time.Sleep(2 * time.Second)
	outage(t, a, b, ids, 12*time.Second)
	took := eventually(t, 120*time.Second, backfillDone(a, time.Time{}, ids...))
	t.Logf("backfill over the veth done %.1fs after failback", took.Seconds())

	var st api.Backfill
	if err := a.GetJSON(context.Background(), "/api/v1/backfill", &st); err != nil {
		t.Fatal(err)
	}
	if !st.RateAuto || st.RateChosen != "eth0 at 10000 Mbit/s" || st.RateMbps != 5000 {
		t.Errorf("backfill limit: auto %v, %q, %g Mbit/s; want \"auto\" to choose half of eth0 at 10000 Mbit/s", st.RateAuto, st.RateChosen, st.RateMbps)
	}
	if st.CopiedSegments < len(ids) || st.Refused != 0 {
		t.Errorf("backfill copied %d segments (%d refused), want at least %d and none refused", st.CopiedSegments, st.Refused, len(ids))
	}
}
