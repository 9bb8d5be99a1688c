package buddy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"time"
)

// AlarmKind names a problem a peer causes that an operator must see.
type AlarmKind string

const (
	// AlarmForgedRecord: a record or secrets for a server arrived signed
	// by another key than the one pinned for that server: a member
	// speaking for another, or a replaced server (see Cluster.Forget).
	AlarmForgedRecord AlarmKind = "forged_record"
	// AlarmBadRecord: a record or secrets refused for what they say: no
	// or a broken signature, a version out of range, or a body that
	// disagrees with the server it is filed under (Options.CheckRecord).
	AlarmBadRecord AlarmKind = "bad_record"
	// AlarmNameConflict: another server, at Alarm.Addr, uses this
	// server's name.
	AlarmNameConflict AlarmKind = "name_conflict"
	// AlarmClockSkew: Alarm.Server's clock is more than ClockSkewLimit
	// from ours (Cleared when it is back within it).
	AlarmClockSkew AlarmKind = "clock_skew"
	// AlarmForgotten: Alarm.Server was gone longer than ForgetAfter and
	// is pruned: its cameras are no longer adopted. Informational.
	AlarmForgotten AlarmKind = "forgotten"
)

// Alarm is one report through Options.OnAlarm. Its texts hold no secret.
type Alarm struct {
	Kind AlarmKind
	// Server is the server concerned: the one a refused record was for,
	// the one whose clock is off, the name claimed twice.
	Server string
	// Addr is the gossip address of the sender, the skewed peer or the
	// claimant, when known.
	Addr   string
	Detail string
	// Offset is the peer's clock minus ours (AlarmClockSkew).
	Offset time.Duration
	// Cleared reports that the condition ended (AlarmClockSkew).
	Cleared bool
}

// maxVersion bounds every version accepted. Versions are wall-clock
// nanoseconds (max(previous+1, now)), which stay below 2^63 until the
// year 2262, so a record at or beyond it is a forgery or garbage, and
// following any accepted version by +1 can never wrap to 0.
const maxVersion = math.MaxInt64

// errUnsigned and the other refusals below are logged (rate-limited)
// and raised as AlarmBadRecord.
var errUnsigned = errors.New("not signed (the peer may run an older buddyrec)")

// ErrForgetSelf: a server cannot forget its own key.
var ErrForgetSelf = errors.New("buddy: forget: that is this server; its own key is node.key in its data_dir")

// sign fills in e's key and signature.
func (c *Cluster) sign(e entry) entry {
	e.Key = c.pub
	e.Sig = ed25519.Sign(c.o.NodeKey, signedEntry(e))
	return e
}

func (c *Cluster) signSecret(s secretEntry) secretEntry {
	s.Key = c.pub
	s.Sig = ed25519.Sign(c.o.NodeKey, signedSecret(s))
	return s
}

// refusal is why a record or secrets from a peer were not taken.
type refusal struct {
	kind   AlarmKind
	server string
	err    error
	key    []byte // the key it was signed with, if any
}

// checkSignedLocked verifies that key signed msg and that key is the one
// pinned for server, pinning it when none is (trust on first use).
// c.mu held.
func (c *Cluster) checkSignedLocked(server string, key, sig, msg []byte) *refusal {
	if sig == nil {
		return &refusal{kind: AlarmBadRecord, server: server, err: errUnsigned}
	}
	if !ed25519.Verify(key, msg, sig) {
		return &refusal{kind: AlarmBadRecord, server: server, err: errors.New("signature does not verify"), key: key}
	}
	pin, ok := c.pins[server]
	if ok && !bytes.Equal(pin, key) {
		return &refusal{kind: AlarmForgedRecord, server: server, key: key,
			err: fmt.Errorf("signed by key %s, but %s is pinned for %s", Fingerprint(key), Fingerprint(pin), server)}
	}
	return nil
}

// pinLocked records key for server if none is pinned. c.mu held.
func (c *Cluster) pinLocked(server string, key []byte) {
	if _, ok := c.pins[server]; ok || key == nil {
		return
	}
	k := bytes.Clone(key)
	c.pins[server] = k
	delete(c.dirty.unpin, server)
	c.dirty.pins[server] = k
	c.dirtyCount++
	kick(c.kickSave)
	c.log.Info("pinned node key", "server", server, "key", Fingerprint(k))
}

// vetEntryLocked decides whether a peer's entry, newer than what we hold,
// may be taken. c.mu held.
func (c *Cluster) vetEntryLocked(e entry) *refusal {
	if r := c.checkSignedLocked(e.Server, e.Key, e.Sig, signedEntry(e)); r != nil {
		return r
	}
	if e.Version > maxVersion {
		return &refusal{kind: AlarmBadRecord, server: e.Server, key: e.Key, err: fmt.Errorf("version %d is beyond any clock", e.Version)}
	}
	if c.o.CheckRecord != nil && len(e.Body) > 0 {
		if err := c.o.CheckRecord(e.Server, e.Body); err != nil {
			return &refusal{kind: AlarmBadRecord, server: e.Server, key: e.Key, err: err}
		}
	}
	return nil
}

// authorLocked names who holds key, from the pins and from the keys
// members advertise in their meta: "rec-x at 10.0.0.9:7946". A forged
// record travels by gossip, so the author, not the last hop, is what the
// alarm can name. c.mu held.
func (c *Cluster) authorLocked(key []byte) (name, addr string) {
	if key == nil {
		return "", ""
	}
	b64 := base64.StdEncoding.EncodeToString(key)
	for n, m := range c.members {
		if m.meta.NodeKey == b64 && n != c.o.Name {
			return n, m.addr
		}
	}
	for n, k := range c.pins {
		if bytes.Equal(k, key) && n != c.o.Name {
			if m, ok := c.members[n]; ok {
				return n, m.addr
			}
			return n, ""
		}
	}
	return "", ""
}

// refuse logs a refusal and raises its alarm, both rate-limited.
func (c *Cluster) refuse(what string, r *refusal) {
	c.mu.Lock()
	author, addr := c.authorLocked(r.key)
	c.mu.Unlock()
	by := "an unknown key (no member advertises it)"
	if author != "" {
		by = fmt.Sprintf("the key of %s at %s", author, addr)
	} else if r.key == nil {
		by = "no key"
	}
	detail := fmt.Sprintf("refused %s for %s signed by %s: %v", what, r.server, by, r.err)
	if c.limit.allow("refuse/"+string(r.kind)+"/"+r.server+"/"+addr, time.Now()) {
		c.log.Error(detail, "server", r.server, "sender", addr)
	}
	c.alarmKeyed(what, Alarm{Kind: r.kind, Server: r.server, Addr: addr, Detail: detail})
}

// alarm calls OnAlarm at most once a minute per kind, server and address;
// clearing an alarm always passes.
func (c *Cluster) alarm(a Alarm) { c.alarmKeyed("", a) }

// alarmKeyed is alarm with what, e.g. "a record" or "secrets", in the
// rate limit's key.
func (c *Cluster) alarmKeyed(what string, a Alarm) {
	if c.o.OnAlarm == nil {
		return
	}
	// Clock alarms are debounced by their own state machine.
	if !a.Cleared && a.Kind != AlarmClockSkew && !c.alarms.allow(string(a.Kind)+"/"+a.Server+"/"+a.Addr+"/"+what, time.Now()) {
		return
	}
	c.o.OnAlarm(a)
}

// Forget clears the node key pinned for server, so that the next newer
// record or secrets it signs pin its key anew: for a server replaced
// with a new data_dir (and so a new key). Records already held stay, so
// a dead server's cameras stay adopted until its replacement's first
// record arrives; older copies of the old record never re-pin the old
// key because only a newer version is vetted and pinned. It reports
// whether a pin was there.
func (c *Cluster) Forget(server string) (bool, error) {
	if server == "" {
		return false, errors.New("buddy: forget: no server name")
	}
	if server == c.o.Name {
		return false, fmt.Errorf("%w (%s)", ErrForgetSelf, server)
	}
	c.mu.Lock()
	_, had := c.pins[server]
	delete(c.pins, server)
	delete(c.dirty.pins, server)
	c.dirty.unpin[server] = true
	c.dirtyCount++
	c.mu.Unlock()
	kick(c.kickSave)
	if err := c.flush(); err != nil {
		return had, err
	}
	c.log.Warn("forgot the node key pinned for a server; its next record pins a key anew", "server", server, "had_pin", had)
	return had, nil
}

// Pinned returns the fingerprint of the key pinned for server, if any.
func (c *Cluster) Pinned(server string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.pins[server]
	if !ok {
		return "", false
	}
	return Fingerprint(k), true
}

// KeyFingerprint is this server's own node key fingerprint.
func (c *Cluster) KeyFingerprint() string { return Fingerprint(c.pub) }

// pruneLoop forgets servers gone longer than ForgetAfter.
func (c *Cluster) pruneLoop() {
	every := min(max(c.o.ForgetAfter/4, 10*time.Millisecond), time.Minute)
	c.every(every, nil, func() { c.prune(time.Now()) })
}

func (c *Cluster) prune(now time.Time) {
	var gone []string
	c.mu.Lock()
	for name, m := range c.members {
		if name == c.o.Name || (m.state != StateDead && m.state != StateLeft) || m.goneSince.IsZero() {
			continue
		}
		if now.Sub(m.goneSince) < c.o.ForgetAfter {
			continue
		}
		v := c.records[name].Version
		if v < c.forgotten[name] {
			v = c.forgotten[name]
		}
		c.forgotten[name] = v
		delete(c.records, name)
		delete(c.secretsIn, name)
		delete(c.members, name)
		delete(c.conflicts, name)
		delete(c.clocks, name)
		delete(c.dirty.records, name)
		delete(c.dirty.secrets, name)
		delete(c.dirty.members, name)
		c.dirty.pruned[name] = v
		c.dirtyCount++
		gone = append(gone, name)
	}
	c.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	kick(c.kickSave)
	for _, name := range gone {
		c.log.Warn("forgot a server gone longer than forget_after: its cameras are no longer adopted", "server", name, "forget_after", c.o.ForgetAfter)
		c.alarm(Alarm{Kind: AlarmForgotten, Server: name,
			Detail: fmt.Sprintf("server %s was gone longer than forget_after (%s) and is forgotten: its cameras are no longer adopted", name, c.o.ForgetAfter)})
	}
	c.notify()
}
