package buddy

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestReplicationAndSecrets(t *testing.T) {
	sink := newLogSink(t)
	oa := testOpts(t, sink, "a")
	oa.Buddies = []string{"b"}
	oa.SecretsInterval = 100 * time.Millisecond
	a := startNode(t, oa)
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))
	c := startNode(t, testOpts(t, sink, "c", a.Addr()))
	all := []*Cluster{a, b, c}
	for _, n := range []string{"a", "b", "c"} {
		waitFor(t, 5*time.Second, n+" alive everywhere", allState(all, n, StateAlive))
	}

	bigBody := bytes.Repeat([]byte("x"), 5000) // above the UDP broadcast size
	bodies := map[*Cluster][]byte{a: []byte(`{"cams":["lobby"]}`), b: []byte(`{"cams":[]}`), c: bigBody}
	for n, body := range bodies {
		if err := n.SetRecord(Record{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SetSecrets([]byte("rtsp://user:pw@cam/1")); err != nil {
		t.Fatal(err)
	}
	for _, viewer := range all {
		for owner, body := range bodies {
			waitFor(t, 5*time.Second, viewer.Name()+" has record of "+owner.Name(), func() bool { return hasRecord(viewer, owner.Name(), body) })
		}
	}

	waitFor(t, 5*time.Second, "b receives a's secrets", func() bool {
		s, ok := b.Secrets("a")
		return ok && string(s) == "rtsp://user:pw@cam/1"
	})
	// Several resend periods later the non-buddy still has nothing.
	time.Sleep(500 * time.Millisecond)
	if s, ok := c.Secrets("a"); ok {
		t.Fatalf("non-buddy c received a's secrets: %q", s)
	}
	if _, ok := a.Secrets("a"); ok {
		t.Fatal("a lists its own secrets as received")
	}

	// An update replaces the record everywhere with a higher version.
	old := c.View().Records["a"].Version
	if err := a.SetRecord(Record{Body: []byte(`{"cams":["lobby","dock"]}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "update reaches c", func() bool { return hasRecord(c, "a", []byte(`{"cams":["lobby","dock"]}`)) })
	if v := c.View().Records["a"].Version; v <= old {
		t.Fatalf("version did not increase: %d -> %d", old, v)
	}
	if err := a.SetRecord(Record{Server: "b", Body: []byte("x")}); err == nil {
		t.Fatal("SetRecord for another server succeeded")
	}
	if strings.Contains(sink.all(), "user:pw") {
		t.Fatal("secret appeared in logs")
	}
}

// TestRecordReachesEveryMemberWithoutGossip: a small record's author
// sends it to each alive member directly. Gossip's few copies may all go
// to one peer, which forwards an honest record but not one it refuses
// (an intruder's), leaving the others to the next push-pull, 15 s on.
// Here the author's gossip queue is emptied as soon as the record is set,
// and every member still has it well before any push-pull.
func TestRecordReachesEveryMemberWithoutGossip(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))
	c := startNode(t, testOpts(t, sink, "c", a.Addr()))
	all := []*Cluster{a, b, c}
	for _, n := range []string{"a", "b", "c"} {
		waitFor(t, 5*time.Second, n+" alive everywhere", allState(all, n, StateAlive))
	}
	for i := range 3 {
		body := []byte(fmt.Sprintf(`{"cams":["lobby"],"change":%d}`, i))
		if err := a.SetRecord(Record{Body: body}); err != nil {
			t.Fatal(err)
		}
		a.bq.Reset()
		for _, viewer := range []*Cluster{b, c} {
			waitFor(t, 3*time.Second, fmt.Sprintf("%s has change %d of a's record", viewer.Name(), i), func() bool { return hasRecord(viewer, "a", body) })
		}
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	sink := newLogSink(t)
	oa := testOpts(t, sink, "a")
	oa.Buddies = []string{"b"}
	a := startNode(t, oa)
	ob := testOpts(t, sink, "b", a.Addr())
	b := startNode(t, ob)
	c := startNode(t, testOpts(t, sink, "c", a.Addr()))

	if err := a.SetRecord(Record{Body: []byte("record-a")}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSecrets([]byte("secret-a")); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRecord(Record{Body: []byte("record-b")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b has a's record and secrets", func() bool {
		s, ok := b.Secrets("a")
		return ok && string(s) == "secret-a" && hasRecord(b, "a", []byte("record-a"))
	})
	waitFor(t, 5*time.Second, "c has b's record", func() bool { return hasRecord(c, "b", []byte("record-b")) })
	oldB := c.View().Records["b"].Version

	// a crashes; b stops, then restarts from its state dir while a is down.
	crash(a)
	waitFor(t, 10*time.Second, "a dead at b and c", allState([]*Cluster{b, c}, "a", StateDead))
	if err := b.Close(); err != nil {
		t.Fatalf("close b: %v", err)
	}
	ob.Join = []string{c.Addr()}
	b2 := startNode(t, ob)

	if got := memberState(b2, "a"); got != StateDead {
		t.Fatalf("restarted b reports a as %q, want dead", got)
	}
	if !hasRecord(b2, "a", []byte("record-a")) {
		t.Fatal("restarted b lost a's record")
	}
	if s, ok := b2.Secrets("a"); !ok || string(s) != "secret-a" {
		t.Fatalf("restarted b lost a's secrets: %q %v", s, ok)
	}
	waitFor(t, 5*time.Second, "b alive again at c", allState([]*Cluster{c}, "b", StateAlive))
	if err := b2.SetRecord(Record{Body: []byte("record-b2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "c accepts b's new record", func() bool { return hasRecord(c, "b", []byte("record-b2")) })
	if v := c.View().Records["b"].Version; v <= oldB {
		t.Fatalf("restarted b's version %d not above %d", v, oldB)
	}
}

func TestCrashAndLeave(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))
	c := startNode(t, testOpts(t, sink, "c", a.Addr()))
	waitFor(t, 5*time.Second, "c alive everywhere", allState([]*Cluster{a, b, c}, "c", StateAlive))
	waitFor(t, 5*time.Second, "b alive everywhere", allState([]*Cluster{a, b, c}, "b", StateAlive))

	crash(c)
	took := waitFor(t, 10*time.Second, "c dead at a and b", allState([]*Cluster{a, b}, "c", StateDead))
	t.Logf("crash detected by all survivors in %s (default keepalive %s, failover_after %s)", took, DefaultKeepalive, DefaultFailoverAfter)
	if !sink.contains("member suspect", "name=c") {
		t.Error("no survivor reported c as suspect before dead")
	}
	m, _ := findMember(a, "c")
	if m.Addr == "" || m.Since.IsZero() {
		t.Errorf("dead member lacks last address or since: %+v", m)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("close b: %v", err)
	}
	waitFor(t, 5*time.Second, "b left at a", allState([]*Cluster{a}, "b", StateLeft))
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if got := memberState(a, "c"); got != StateDead {
		t.Fatalf("c is %q after b left, want dead", got)
	}
}

func TestRestartOnNewPort(t *testing.T) {
	for _, tc := range []struct {
		name         string
		waitForDeath bool
	}{
		{"after detection", true},
		{"before detection", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newLogSink(t)
			a := startNode(t, testOpts(t, sink, "a"))
			ob := testOpts(t, sink, "b", a.Addr())
			b := startNode(t, ob)
			waitFor(t, 5*time.Second, "b alive at a", allState([]*Cluster{a}, "b", StateAlive))
			oldAddr := b.Addr()
			crash(b)
			if tc.waitForDeath {
				waitFor(t, 10*time.Second, "b dead at a", allState([]*Cluster{a}, "b", StateDead))
			}
			b2 := startNode(t, ob) // same name and state dir, new port
			if b2.Addr() == oldAddr {
				t.Skip("kernel reused the port")
			}
			took := waitFor(t, 10*time.Second, "b alive at its new address", func() bool {
				m, _ := findMember(a, "b")
				return m.State == StateAlive && m.Addr == b2.Addr()
			})
			t.Logf("restarted b accepted %s after its start", took)
			waitFor(t, 5*time.Second, "b2 sees a", allState([]*Cluster{b2}, "a", StateAlive))
		})
	}
}

func TestKeyErrors(t *testing.T) {
	sink := newLogSink(t)
	keyed := startNode(t, testOpts(t, sink, "keyed"))
	plainOpts := testOpts(t, sink, "plain")
	plainOpts.Key, plainOpts.Insecure = nil, true
	plain := startNode(t, plainOpts)

	for _, tc := range []struct {
		name    string
		key     []byte
		insec   bool
		join    string
		wantErr string
	}{
		{"no key, not insecure", nil, false, "", "insecure"},
		{"bad key length", []byte("short"), false, "", "16, 24 or 32"},
		{"wrong key", []byte("fedcba9876543210"), false, keyed.Addr(), "gossip key mismatch"},
		{"plaintext joins encrypted", nil, true, keyed.Addr(), "gossip key mismatch"},
		{"encrypted joins plaintext", testKey, false, plain.Addr(), "gossip key mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOpts(t, sink, "joiner")
			o.Key, o.Insecure = tc.key, tc.insec
			if tc.join != "" {
				o.Join = []string{tc.join}
			}
			start := time.Now()
			c, err := Start(context.Background(), o)
			if err == nil {
				_ = c.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), string(testKey)) {
				t.Fatal("error contains the key")
			}
			t.Logf("%s after %s", err, time.Since(start).Round(time.Millisecond))
		})
	}
	if memberState(keyed, "joiner") != "" || memberState(plain, "joiner") != "" {
		t.Fatal("a rejected joiner appears in a view")
	}
}

func TestStartWithUnreachablePeerRetries(t *testing.T) {
	sink := newLogSink(t)
	// Reserve an address, then free it so nothing answers there yet.
	first := startNode(t, testOpts(t, sink, "a"))
	addr := first.Addr()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, testOpts(t, sink, "b", addr))
	oa := testOpts(t, sink, "a")
	oa.BindAddr = addr
	a := startNode(t, oa)
	waitFor(t, 10*time.Second, "b joins a once a is up", allState([]*Cluster{a, b}, "b", StateAlive))
	waitFor(t, 10*time.Second, "a alive at b", allState([]*Cluster{b}, "a", StateAlive))
}

func TestContextCancelCloses(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	ctx, cancel := context.WithCancel(context.Background())
	b, err := Start(ctx, testOpts(t, sink, "b", a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	waitFor(t, 5*time.Second, "b alive", allState([]*Cluster{a}, "b", StateAlive))
	cancel()
	waitFor(t, 5*time.Second, "b left after cancel", allState([]*Cluster{a}, "b", StateLeft))
}

func TestMalformedPeerInput(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	if err := a.SetRecord(Record{Body: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	d := &mlDelegate{c: a}
	zk := newKey(t)
	good := encodeEntry([]byte{msgRecord}, signEntry(zk, entry{Server: "z", Version: 5, Body: []byte("z5")}))
	for _, msg := range [][]byte{
		nil, {msgRecord}, {msgSecrets, 0xff}, {99, 1, 2}, good[:len(good)-1],
		encodeEntry([]byte{msgRecord}, entry{Server: "", Version: 1}),
	} {
		d.NotifyMsg(msg)
		d.MergeRemoteState(msg, false)
	}
	d.NotifyUpdate(&memberlist.Node{Name: "q", Meta: []byte("{bad json")})
	v := a.View()
	if len(v.Records) != 1 || !hasRecord(a, "a", []byte("mine")) {
		t.Fatalf("garbage changed records: %+v", v.Records)
	}
	// A well-formed record still merges, and an older version never wins.
	d.NotifyMsg(good)
	d.NotifyMsg(encodeEntry([]byte{msgRecord}, signEntry(zk, entry{Server: "z", Version: 4, Body: []byte("z4")})))
	if !hasRecord(a, "z", []byte("z5")) {
		t.Fatalf("record z: %+v", a.View().Records["z"])
	}
	// A peer replaying our own record with a higher version pushes ours above it.
	d.NotifyMsg(encodeEntry([]byte{msgRecord}, a.sign(entry{Server: "a", Version: 1 << 62, Body: []byte("stale")})))
	if r := a.View().Records["a"]; string(r.Body) != "mine" || r.Version <= 1<<62 {
		t.Fatalf("own record after stale replay: %q v%d", r.Body, r.Version)
	}
}

// TestSecretsForgottenWhenNoLongerBuddy: an installer takes c off a's
// buddy list and restarts a. c forgets a's secrets, in memory and on disk;
// b, still a buddy, keeps them.
func TestSecretsForgottenWhenNoLongerBuddy(t *testing.T) {
	sink := newLogSink(t)
	oa := testOpts(t, sink, "a")
	oa.Buddies = []string{"b", "c"}
	a := startNode(t, oa)
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))
	oc := testOpts(t, sink, "c", a.Addr())
	c := startNode(t, oc)
	if err := a.SetSecrets([]byte("rtsp://u:pw@cam")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRecord(Record{Body: []byte("record-a")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b and c hold a's secrets", func() bool {
		_, okb := b.Secrets("a")
		_, okc := c.Secrets("a")
		return okb && okc
	})

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	oa.Buddies = []string{"b"}
	oa.Join = []string{b.Addr()}
	a2 := startNode(t, oa)
	if err := a2.SetRecord(Record{Body: []byte("record-a2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "c has a's new record", func() bool { return hasRecord(c, "a", []byte("record-a2")) })
	if _, ok := c.Secrets("a"); ok {
		t.Fatal("c still holds a's secrets after a took it off its buddy list")
	}
	if s, ok := b.Secrets("a"); !ok || string(s) != "rtsp://u:pw@cam" {
		t.Fatalf("b, still a's buddy, lost a's secrets: %q %v", s, ok)
	}
	if !sink.contains("forgot secrets", "of=a", "node=c") {
		t.Error("c did not log that it forgot a's secrets")
	}

	// Restarted from its state dir, c has not got them back from disk.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	oc.Join = []string{b.Addr()}
	c2 := startNode(t, oc)
	if _, ok := c2.Secrets("a"); ok {
		t.Fatal("restarted c loaded a's secrets from cluster.db")
	}
}

// TestMembersMatchesView: Members is View's membership without the records,
// including servers known only by their record (dead before we started).
func TestMembersMatchesView(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))
	b.merge([]entry{signEntry(newKey(t), entry{Server: "gone", Version: 1, Body: []byte("x")})})
	waitFor(t, 5*time.Second, "a and b alive at b", allState([]*Cluster{b}, "a", StateAlive))
	got, want := b.Members(), b.View().Members
	if len(got) != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("Members() = %+v\nView().Members = %+v", got, want)
	}
	if got[1].Name != "b" || got[2].Name != "gone" || got[2].State != StateDead {
		t.Fatalf("Members() = %+v, want a, b and gone (dead), sorted", got)
	}
}

// TestDeclaredDeadAt: when memberlist refutes a dead message about this
// server (peers declared it dead while it ran), DeclaredDeadAt moves and
// Changed fires, so the caller can hold its cameras' failback.
func TestDeclaredDeadAt(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	if !a.DeclaredDeadAt().IsZero() {
		t.Fatalf("fresh server reports being declared dead at %v", a.DeclaredDeadAt())
	}
	for len(a.Changed()) > 0 {
		<-a.Changed()
	}
	before := time.Now()
	w := &mlLogWriter{log: sink.logger("a"), onRefuted: a.onRefuted}
	w.Write([]byte("[WARN] memberlist: Refuting a suspect message (from: b)\n"))
	if !a.DeclaredDeadAt().IsZero() {
		t.Fatal("a refuted suspicion counts as being declared dead")
	}
	w.Write([]byte("[WARN] memberlist: Refuting a dead message (from: b)\n"))
	if got := a.DeclaredDeadAt(); got.Before(before) {
		t.Fatalf("DeclaredDeadAt = %v after a refuted dead message, want ≥ %v", got, before)
	}
	select {
	case <-a.Changed():
	case <-time.After(time.Second):
		t.Fatal("Changed did not fire")
	}
}
