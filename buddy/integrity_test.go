package buddy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// alarmLog collects what OnAlarm reports.
type alarmLog struct {
	mu     sync.Mutex
	alarms []Alarm
}

func (l *alarmLog) add(a Alarm) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alarms = append(l.alarms, a)
}

// find returns the first alarm of kind for server satisfying ok.
func (l *alarmLog) find(kind AlarmKind, server string, ok func(Alarm) bool) (Alarm, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.alarms {
		if a.Kind == kind && a.Server == server && (ok == nil || ok(a)) {
			return a, true
		}
	}
	return Alarm{}, false
}

func (l *alarmLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, a := range l.alarms {
		fmt.Fprintf(&b, "%s %s %s: %s\n", a.Kind, a.Server, a.Addr, a.Detail)
	}
	return b.String()
}

// namedBody is the test's record body: "name=SERVER;rest". checkNamed
// plays node's check that a body names the server it is filed under.
func namedBody(name, rest string) []byte { return []byte("name=" + name + ";" + rest) }

func checkNamed(server string, body []byte) error {
	name, _, _ := strings.Cut(strings.TrimPrefix(string(body), "name="), ";")
	if name != server {
		return fmt.Errorf("filed under %q, names %q", server, name)
	}
	return nil
}

// sendRaw sends msg over TCP from c to every alive member, as a member
// holding the gossip key but running hostile code would.
func sendRaw(t *testing.T, c *Cluster, msg []byte) {
	t.Helper()
	for _, n := range c.aliveNodes() {
		if err := c.ml.SendReliable(n, msg); err != nil {
			t.Fatalf("send to %s: %v", n.Name, err)
		}
	}
}

// TestIntruderCannotSpeakForAnother: a member holding the site's gossip
// key publishes a record for itself that names v1, a record for v1 at
// version 2^64−1 (signed by itself, and unsigned), and secrets "from v1"
// pointing at its own stream. v2 (v1's buddy) keeps its view of v1,
// raises alarms naming the intruder's address, and still applies v1's
// real later record and secrets.
func TestIntruderCannotSpeakForAnother(t *testing.T) {
	sink := newLogSink(t)
	alarms := &alarmLog{}
	o1 := testOpts(t, sink, "v1")
	o1.Buddies = []string{"v2"}
	o1.CheckRecord = checkNamed
	v1 := startNode(t, o1)
	o2 := testOpts(t, sink, "v2", v1.Addr())
	o2.CheckRecord = checkNamed
	o2.OnAlarm = alarms.add
	v2 := startNode(t, o2)
	ox := testOpts(t, sink, "x", v1.Addr())
	ox.CheckRecord = checkNamed
	x := startNode(t, ox)
	all := []*Cluster{v1, v2, x}
	for _, n := range []string{"v1", "v2", "x"} {
		waitFor(t, 5*time.Second, n+" alive everywhere", allState(all, n, StateAlive))
	}
	real := namedBody("v1", "cams=lobby")
	if err := v1.SetRecord(Record{Body: real}); err != nil {
		t.Fatal(err)
	}
	if err := v1.SetSecrets([]byte("rtsp://cam-of-v1/lobby")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "v2 has v1's record and secrets", func() bool {
		s, ok := v2.Secrets("v1")
		return ok && string(s) == "rtsp://cam-of-v1/lobby" && hasRecord(v2, "v1", real)
	})
	realVersion := v2.View().Records["v1"].Version

	// 1. x's own record, but its body speaks for v1.
	if err := x.SetRecord(Record{Body: namedBody("v1", "cams=evil")}); err != nil {
		t.Fatal(err)
	}
	// 2. A record for v1 at the highest version, signed by x.
	forged := x.sign(entry{Server: "v1", Version: math.MaxUint64, Body: namedBody("v1", "cams=")})
	sendRaw(t, x, encodeEntry([]byte{msgRecord}, forged))
	// 3. The same unsigned, and through push/pull state as well as gossip.
	unsigned := entry{Server: "v1", Version: math.MaxUint64, Body: namedBody("v1", "cams=")}
	sendRaw(t, x, encodeEntry([]byte{msgRecord}, unsigned))
	x.bq.QueueBroadcast(&broadcast{name: "v1", msg: encodeEntry([]byte{msgRecord}, forged)})
	(&mlDelegate{c: v2}).MergeRemoteState(encodeState([]entry{forged, unsigned}), false)
	// 4. Secrets "from v1" pointing at the intruder's stream.
	evil := x.signSecret(secretEntry{From: "v1", Version: math.MaxUint64 >> 1, Body: []byte("rtsp://intruder/stream")})
	sendRaw(t, x, encodeSecret([]byte{msgSecrets}, evil))

	waitFor(t, 5*time.Second, "alarms for the forged record and secrets", func() bool {
		_, rec := alarms.find(AlarmForgedRecord, "v1", func(a Alarm) bool { return a.Addr == x.Addr() && strings.Contains(a.Detail, "record") })
		_, sec := alarms.find(AlarmForgedRecord, "v1", func(a Alarm) bool { return a.Addr == x.Addr() && strings.Contains(a.Detail, "secrets") })
		_, body := alarms.find(AlarmBadRecord, "x", func(a Alarm) bool { return a.Addr == x.Addr() })
		return rec && sec && body
	})
	time.Sleep(300 * time.Millisecond) // every copy has arrived by now
	for _, c := range []*Cluster{v1, v2} {
		if r := c.View().Records["v1"]; !bytes.Equal(r.Body, real) || r.Version != realVersion {
			t.Fatalf("%s's view of v1 changed: %q v%d, want %q v%d", c.Name(), r.Body, r.Version, real, realVersion)
		}
		if r, ok := c.View().Records["x"]; ok {
			t.Fatalf("%s took x's record that names v1: %q", c.Name(), r.Body)
		}
	}
	if s, _ := v2.Secrets("v1"); string(s) != "rtsp://cam-of-v1/lobby" {
		t.Fatalf("v2 holds secrets of v1 %q", s)
	}
	if !strings.Contains(alarms.String(), "x at "+x.Addr()) {
		t.Errorf("alarms do not name the intruder and its address:\n%s", alarms)
	}

	// The real owner still speaks: its next record and secrets apply.
	later := namedBody("v1", "cams=lobby,dock")
	if err := v1.SetRecord(Record{Body: later}); err != nil {
		t.Fatal(err)
	}
	if err := v1.SetSecrets([]byte("rtsp://cam-of-v1/dock")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "v1's later record and secrets reach v2", func() bool {
		s, _ := v2.Secrets("v1")
		return string(s) == "rtsp://cam-of-v1/dock" && hasRecord(v2, "v1", later)
	})
	// And x's own honest record is taken.
	if err := x.SetRecord(Record{Body: namedBody("x", "cams=")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "x's honest record reaches v2", func() bool { return hasRecord(v2, "x", namedBody("x", "cams=")) })
	if strings.Contains(sink.all(), "rtsp://") {
		t.Error("a secret appeared in the logs")
	}
}

// TestOwnRecordForgedByAnother: a record for v1 signed by another key
// does not move v1's own version (a 2^64−1 floor would wrap it to 0).
func TestOwnRecordForgedByAnother(t *testing.T) {
	sink := newLogSink(t)
	alarms := &alarmLog{}
	o := testOpts(t, sink, "v1")
	o.OnAlarm = alarms.add
	v1 := startNode(t, o)
	if err := v1.SetRecord(Record{Body: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	before := v1.View().Records["v1"].Version
	v1.merge([]entry{signEntry(newKey(t), entry{Server: "v1", Version: math.MaxUint64, Body: []byte("evil")})})
	if r := v1.View().Records["v1"]; string(r.Body) != "mine" || r.Version != before {
		t.Fatalf("own record after a forged copy: %q v%d (was v%d)", r.Body, r.Version, before)
	}
	if _, ok := alarms.find(AlarmForgedRecord, "v1", nil); !ok {
		t.Fatalf("no alarm for a record of ours signed by another key: %s", alarms)
	}
	if err := v1.SetRecord(Record{Body: []byte("next")}); err != nil {
		t.Fatal(err)
	}
	if r := v1.View().Records["v1"]; r.Version <= before || r.Version > maxVersion {
		t.Fatalf("next own version %d, want above %d and below 2^63", r.Version, before)
	}
}

// TestPinSurvivesRestartAndForget: b pins a's key and keeps the pin
// across a restart; a replaced (new data_dir, so a new key) is refused
// with an alarm naming its address until b forgets the pin, and then its
// next record applies. ForgetPin clears a pin in a stopped server's file.
func TestPinSurvivesRestartAndForget(t *testing.T) {
	sink := newLogSink(t)
	alarms := &alarmLog{}
	a := startNode(t, testOpts(t, sink, "a"))
	ob := testOpts(t, sink, "b", a.Addr())
	ob.OnAlarm = alarms.add
	b := startNode(t, ob)
	if err := a.SetRecord(Record{Body: []byte("a-1")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b has a's record", func() bool { return hasRecord(b, "a", []byte("a-1")) })
	pin, ok := b.Pinned("a")
	if !ok || pin != a.KeyFingerprint() {
		t.Fatalf("b pinned %q (%v), want a's key %s", pin, ok, a.KeyFingerprint())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ob.Join = nil
	b = startNode(t, ob)
	if got, ok := b.Pinned("a"); !ok || got != pin {
		t.Fatalf("after restart b pins %q (%v), want %s", got, ok, pin)
	}

	// a is replaced: same name, a new data_dir and so a new key.
	crash(a)
	waitFor(t, 10*time.Second, "a dead at b", func() bool { return memberState(b, "a") == StateDead })
	a2 := startNode(t, testOpts(t, sink, "a", b.Addr()))
	if a2.KeyFingerprint() == pin {
		t.Fatal("a new data_dir kept the old key")
	}
	if err := a2.SetRecord(Record{Body: []byte("a-2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b refuses a2's record with an alarm naming its address", func() bool {
		_, ok := alarms.find(AlarmForgedRecord, "a", func(al Alarm) bool { return al.Addr == a2.Addr() })
		return ok
	})
	if !hasRecord(b, "a", []byte("a-1")) {
		t.Fatalf("b's record of a is %q, want the old a-1 kept", b.View().Records["a"].Body)
	}

	had, err := b.Forget("a")
	if err != nil || !had {
		t.Fatalf("forget: %v %v", had, err)
	}
	// a2 keeps gossiping: its next message may pin its key at once (trust
	// on first use again), but the old key is gone for good.
	if got, ok := b.Pinned("a"); ok && got == pin {
		t.Fatal("the old pin is still there after Forget")
	}
	if err := a2.SetRecord(Record{Body: []byte("a-3")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a2's next record applies at b", func() bool { return hasRecord(b, "a", []byte("a-3")) })
	if got, _ := b.Pinned("a"); got != a2.KeyFingerprint() {
		t.Fatalf("b now pins %q, want a2's key %s", got, a2.KeyFingerprint())
	}
	if _, err := b.Forget("b"); !errors.Is(err, ErrForgetSelf) {
		t.Fatalf("forgetting oneself: %v", err)
	}

	// Offline: with b stopped, ForgetPin edits its cluster.db.
	crash(a2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if had, err := ForgetPin(ob.StateDir, "a"); err != nil || !had {
		t.Fatalf("ForgetPin: %v %v", had, err)
	}
	if had, err := ForgetPin(ob.StateDir, "a"); err != nil || had {
		t.Fatalf("second ForgetPin: %v %v, want no pin left", had, err)
	}
}

// TestPruneGoneServers: a server gone longer than ForgetAfter leaves
// memory and cluster.db (with an alarm), and a peer's stale copy of its
// record does not bring it back.
func TestPruneGoneServers(t *testing.T) {
	sink := newLogSink(t)
	alarms := &alarmLog{}
	const bound = 1500 * time.Millisecond
	oa := testOpts(t, sink, "a")
	oa.ForgetAfter = bound
	a := startNode(t, oa)
	ob := testOpts(t, sink, "b", a.Addr())
	ob.ForgetAfter = bound
	ob.OnAlarm = alarms.add
	b := startNode(t, ob)
	oc := testOpts(t, sink, "c", a.Addr())
	oc.Buddies = []string{"b"}
	c := startNode(t, oc)
	if err := c.SetRecord(Record{Body: []byte("c-1")}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSecrets([]byte("c-secret")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b has c's record and secrets", func() bool {
		_, ok := b.Secrets("c")
		return ok && hasRecord(b, "c", []byte("c-1"))
	})
	stale := b.records["c"]
	crashAt := time.Now()
	crash(c)
	waitFor(t, 10*time.Second, "c dead at a and b", allState([]*Cluster{a, b}, "c", StateDead))
	// Within the bound, b still knows what to adopt, across a restart.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ob.Join = []string{a.Addr()}
	b = startNode(t, ob)
	if !hasRecord(b, "c", []byte("c-1")) || memberState(b, "c") != StateDead {
		t.Fatalf("restarted b within the bound: record %q, state %q", b.View().Records["c"].Body, memberState(b, "c"))
	}
	waitFor(t, 10*time.Second, "b forgets c", func() bool {
		_, ok := findMember(b, "c")
		_, rec := b.View().Records["c"]
		_, sec := b.Secrets("c")
		return !ok && !rec && !sec
	})
	if time.Since(crashAt) < bound {
		t.Fatalf("c forgotten %s after its crash, before the bound %s", time.Since(crashAt), bound)
	}
	if _, ok := alarms.find(AlarmForgotten, "c", nil); !ok {
		t.Fatalf("no alarm for forgetting c: %s", alarms)
	}
	b.merge([]entry{stale})
	if _, ok := b.View().Records["c"]; ok {
		t.Fatal("a stale copy of c's record brought it back")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ob.Join = nil
	b = startNode(t, ob)
	if _, ok := b.View().Records["c"]; ok {
		t.Fatal("c's record came back from cluster.db")
	}
	if _, ok := b.Secrets("c"); ok {
		t.Fatal("c's secrets came back from cluster.db")
	}
	b.merge([]entry{stale})
	if _, ok := b.View().Records["c"]; ok {
		t.Fatal("after a restart a stale copy of c's record brought it back")
	}
}

// TestClockSkew: b's clock runs 2 s ahead; a raises clock_skew naming b
// and its address, and clears it when b's clock is set right.
func TestClockSkew(t *testing.T) {
	sink := newLogSink(t)
	alarms := &alarmLog{}
	oa := testOpts(t, sink, "a")
	oa.OnAlarm = alarms.add
	a := startNode(t, oa)
	var skew atomic.Int64
	skew.Store(int64(2 * time.Second))
	ob := testOpts(t, sink, "b", a.Addr())
	ob.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	b := startNode(t, ob)
	waitFor(t, 15*time.Second, "clock_skew alarm for b", func() bool {
		_, ok := alarms.find(AlarmClockSkew, "b", func(al Alarm) bool { return !al.Cleared })
		return ok
	})
	al, _ := alarms.find(AlarmClockSkew, "b", nil)
	if al.Addr != b.Addr() || al.Offset < 1500*time.Millisecond || al.Offset > 2500*time.Millisecond || !strings.Contains(al.Detail, "b ("+b.Addr()+")") {
		t.Fatalf("alarm %+v, want b at %s about +2s", al, b.Addr())
	}
	if _, ok := alarms.find(AlarmClockSkew, "a", nil); ok {
		t.Fatal("a raised a skew alarm about itself")
	}
	skew.Store(int64(20 * time.Millisecond))
	waitFor(t, 15*time.Second, "clock_skew cleared for b", func() bool {
		_, ok := alarms.find(AlarmClockSkew, "b", func(al Alarm) bool { return al.Cleared })
		return ok
	})
	if off, ok := a.ClockOffset("b"); !ok || off > 400*time.Millisecond || off < -400*time.Millisecond {
		t.Fatalf("a measures b's clock at %s (%v)", off, ok)
	}
}

// TestGarbageToGossipPortIsQuiet: thousands of random packets and
// connections to the gossip port log a handful of lines, not one each,
// and the key alarm names the sender's address.
func TestGarbageToGossipPortIsQuiet(t *testing.T) {
	sink := newLogSink(t)
	var keyAddrs sync.Map
	o := testOpts(t, sink, "a")
	o.OnKeyMismatch = func(addr, detail string) { keyAddrs.Store(addr, true) }
	a := startNode(t, o)
	udp, err := net.Dial("udp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	junk := bytes.Repeat([]byte{0x5a, 0x13, 0x77, 0x01}, 64)
	for i := range 3000 {
		junk[i%len(junk)] ^= byte(i)
		udp.Write(junk)
		if i%30 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	var local string
	for range 100 {
		conn, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		local = conn.LocalAddr().String()
		conn.Write(junk)
		conn.Close()
	}
	time.Sleep(500 * time.Millisecond)
	lines := 0
	for _, l := range strings.Split(sink.all(), "\n") {
		if strings.Contains(l, "node=a") && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) {
			lines++
		}
	}
	if lines == 0 || lines > 30 {
		t.Fatalf("%d warning/error lines for 3100 garbage packets and connections, want a few (1..30)", lines)
	}
	if !sink.contains("suppressed_similar") && lines > 5 {
		t.Log("no suppression count logged yet")
	}
	_ = local

	// A server with another key: the alarm callback names the address
	// its connection came from.
	wrong := testOpts(t, sink, "wrong", a.Addr())
	wrong.Key = []byte("fedcba9876543210")
	if c, err := Start(context.Background(), wrong); err == nil {
		c.Close()
		t.Fatal("a server with another key joined")
	}
	waitFor(t, 5*time.Second, "key mismatch naming the peer's address", func() bool {
		found := false
		keyAddrs.Range(func(k, _ any) bool {
			host, port, err := net.SplitHostPort(k.(string))
			found = found || (err == nil && host == "127.0.0.1" && port != "")
			return true
		})
		return found
	})
}

// TestSecondServerWithTakenName: a server started with the name of a live
// server (another data_dir, so another key) fails Start saying so, and
// the live one raises an alarm naming the newcomer's address — also when
// the newcomer only joined a third server. A restart of the same server
// (same key) on a new address is not refused.
func TestSecondServerWithTakenName(t *testing.T) {
	sink := newLogSink(t)
	alarms := &alarmLog{}
	oa := testOpts(t, sink, "a")
	oa.OnAlarm = alarms.add
	a := startNode(t, oa)
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))
	waitFor(t, 5*time.Second, "b alive at a", func() bool { return memberState(a, "b") == StateAlive })

	addr := freeLoopbackAddr(t)
	dup := testOpts(t, sink, "a", b.Addr())
	dup.BindAddr = addr
	c, err := Start(context.Background(), dup)
	if err == nil {
		c.Close()
		t.Fatal("a second server named a started")
	}
	if !strings.Contains(err.Error(), `another server named "a" is alive at `+a.Addr()) {
		t.Fatalf("error %q does not say which server holds the name", err)
	}
	waitFor(t, 5*time.Second, "a's alarm naming the newcomer", func() bool {
		_, ok := alarms.find(AlarmNameConflict, "a", func(al Alarm) bool { return al.Addr == addr })
		return ok
	})
	if memberState(b, "a") != StateAlive || memberState(a, "b") != StateAlive {
		t.Fatalf("the site was disturbed: %s / %s", describe(a), describe(b))
	}

	// The same server (same key) restarted on a new address is accepted.
	oa2 := oa
	oa2.OnAlarm = nil
	oa2.Join = []string{b.Addr()}
	crash(a)
	a2 := startNode(t, oa2)
	waitFor(t, 15*time.Second, "restarted a alive at b", func() bool {
		m, ok := findMember(b, "a")
		return ok && m.State == StateAlive && m.Addr == a2.Addr()
	})
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port")
	return ""
}
