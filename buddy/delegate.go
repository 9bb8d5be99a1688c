package buddy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// mlDelegate receives memberlist's callbacks. memberlist may call them
// while holding its own locks, so they only take c.mu, never call back
// into memberlist, and hand any network work to goroutines.
type mlDelegate struct{ c *Cluster }

var (
	_ memberlist.Delegate         = (*mlDelegate)(nil)
	_ memberlist.EventDelegate    = (*mlDelegate)(nil)
	_ memberlist.ConflictDelegate = (*mlDelegate)(nil)
	_ memberlist.PingDelegate     = (*mlDelegate)(nil)
)

// NodeMeta returns our encoded nodeMeta (≤ 512 bytes, checked by Start).
func (d *mlDelegate) NodeMeta(limit int) []byte {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.meta) > limit {
		return nil
	}
	return slices.Clone(c.meta)
}

// NotifyMsg handles records and secrets; b is only valid during the call.
func (d *mlDelegate) NotifyMsg(b []byte) {
	c := d.c
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case msgRecord:
		e, err := decodeEntry(b[1:])
		if err != nil {
			c.peerWarn("ignored malformed record from a peer", "err", err)
			return
		}
		c.merge([]entry{e})
	case msgSecrets:
		s, err := decodeSecret(b[1:])
		if err != nil {
			c.peerWarn("ignored malformed secrets from a peer", "err", err)
			return
		}
		c.mergeSecrets(s)
	case msgNameConflict:
		nc, err := decodeNameConflict(b[1:])
		if err != nil {
			c.peerWarn("ignored malformed name conflict notice from a peer", "err", err)
			return
		}
		c.onNameConflictNotice(nc)
	default:
		c.peerWarn("ignored unknown message from a peer", "type", b[0])
	}
}

// GetBroadcasts hands queued record broadcasts to memberlist's gossip.
func (d *mlDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.bq.GetBroadcasts(overhead, limit)
}

// LocalState is every record we know, for push/pull anti-entropy.
func (d *mlDelegate) LocalState(join bool) []byte {
	c := d.c
	c.mu.Lock()
	entries := make([]entry, 0, len(c.records))
	for _, e := range c.records {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	return encodeState(entries)
}

// MergeRemoteState merges a peer's records.
func (d *mlDelegate) MergeRemoteState(buf []byte, join bool) {
	c := d.c
	if len(buf) == 0 {
		return
	}
	entries, err := decodeState(buf)
	if err != nil {
		c.peerWarn("ignored malformed state from a peer", "err", err)
		return
	}
	c.merge(entries)
}

// NotifyJoin: a node became alive (also called for ourselves at start).
func (d *mlDelegate) NotifyJoin(n *memberlist.Node) {
	c := d.c
	node := copyNode(n)
	c.mu.Lock()
	m := c.memberLocked(n.Name)
	m.state, m.since, m.node, m.addr = StateAlive, time.Now(), node, n.Address()
	m.goneSince = time.Time{}
	c.setMetaLocked(m, n.Meta)
	if c.conflicts[n.Name] == m.addr {
		delete(c.conflicts, n.Name)
	}
	c.markMember(n.Name, m)
	closing := c.closing
	c.mu.Unlock()
	c.log.Info("member alive", "name", n.Name, "addr", node.Address())
	c.notify()
	if n.Name == c.o.Name || closing {
		return
	}
	// Make sure the newcomer has our record now, not at the next push/pull,
	// and our secrets if it is our buddy.
	c.goBackground(func() {
		<-c.ready
		c.mu.Lock()
		own, ok := c.records[c.o.Name]
		isBuddy := c.buddies[node.Name] // SetBuddies may change it
		c.mu.Unlock()
		if ok {
			if err := c.ml.SendReliable(node, encodeEntry([]byte{msgRecord}, own)); err != nil {
				c.log.Debug("send record failed", "to", node.Name, "err", err)
			}
		}
		if isBuddy {
			c.sendSecrets(node.Name)
		}
	})
}

// NotifyLeave: memberlist declared a node dead or saw it leave; it cannot
// tell which, so the leave notice sent by Close decides.
func (d *mlDelegate) NotifyLeave(n *memberlist.Node) {
	c := d.c
	c.mu.Lock()
	m := c.memberLocked(n.Name)
	m.state, m.since, m.node = StateDead, time.Now(), nil
	if m.goneSince.IsZero() {
		m.goneSince = m.since
	}
	if e, ok := c.records[n.Name]; ok && e.Left {
		m.state = StateLeft
	}
	c.markMember(n.Name, m)
	delete(c.clocks, n.Name)
	state := m.state
	_, conflict := c.conflicts[n.Name]
	c.mu.Unlock()
	c.log.Info("member "+string(state), "name", n.Name, "addr", n.Address())
	c.notify()
	if conflict {
		kick(c.kickRejoin)
	}
}

// NotifyUpdate: a node's meta (or address) changed.
func (d *mlDelegate) NotifyUpdate(n *memberlist.Node) {
	c := d.c
	c.mu.Lock()
	m := c.memberLocked(n.Name)
	m.addr, m.node = n.Address(), copyNode(n)
	c.setMetaLocked(m, n.Meta)
	if m.state == StateSuspect {
		m.state, m.since = StateAlive, time.Now()
	}
	c.markMember(n.Name, m)
	c.mu.Unlock()
	c.notify()
}

// NotifyConflict: another address claims an existing name. For a peer
// this usually is a restart on a new address before the old incarnation
// was declared dead; we contact the claimant once it is.
//
// The node keys in both nodes' meta tell the two cases apart: the same
// key is the same server (restarted on a new address); another key is
// another server using a taken name. A newcomer that meets a live
// server with its name fails Start (see checkStartConflict); a running
// server raises AlarmNameConflict; a third server that sees the clash
// tells the server holding the name, which may not hear of the
// claimant itself (the claimant cannot list two members of one name).
func (d *mlDelegate) NotifyConflict(existing, other *memberlist.Node) {
	c := d.c
	otherMeta, _ := decodeMeta(other.Meta)
	if existing.Name == c.o.Name {
		if otherMeta.NodeKey == base64.StdEncoding.EncodeToString(c.pub) {
			if c.limit.allow("conflict-self-old/"+other.Address(), time.Now()) {
				c.log.Info("peers still know this server at its previous address; it takes over once that one is declared dead", "old", other.Address())
			}
			return
		}
		c.mu.Lock()
		starting := c.starting
		if starting && c.startConflict == nil {
			c.startConflict = copyNode(other)
		}
		c.mu.Unlock()
		if !starting {
			c.nameTaken(other.Address(), "")
		}
		return
	}
	existingMeta, _ := decodeMeta(existing.Meta)
	c.mu.Lock()
	c.conflicts[existing.Name] = other.Address()
	c.mu.Unlock()
	if otherMeta.NodeKey == existingMeta.NodeKey && otherMeta.NodeKey != "" {
		if c.limit.allow("conflict-restart/"+existing.Name, time.Now()) {
			c.log.Warn("server name claimed from a new address with the same node key; accepting it once the old one is dead",
				"name", existing.Name, "old", existing.Address(), "new", other.Address())
		}
		return
	}
	if c.limit.allow("conflict-other/"+existing.Name+"/"+other.Address(), time.Now()) {
		c.log.Error("two servers claim one name (different node keys); telling the one known first",
			"name", existing.Name, "known", existing.Address(), "claimant", other.Address())
	}
	key, _ := base64.StdEncoding.DecodeString(otherMeta.NodeKey)
	msg := encodeNameConflict([]byte{msgNameConflict}, nameConflict{Name: existing.Name, Addr: other.Address(), Key: key})
	c.sendAsync(copyNode(existing), msg, "name conflict notice")
}

// onNameConflictNotice: a peer saw another server claim our name.
func (c *Cluster) onNameConflictNotice(nc nameConflict) {
	if nc.Name != c.o.Name || bytes.Equal(nc.Key, c.pub) || nc.Addr == c.localAddr() {
		return
	}
	c.nameTaken(nc.Addr, " (reported by a peer)")
}

// nameTaken raises AlarmNameConflict for a claimant of our name.
func (c *Cluster) nameTaken(addr, how string) {
	detail := fmt.Sprintf("another server at %s uses this server's name %q%s: names must be unique in a site; it is refused, but fix its config", addr, c.o.Name, how)
	if c.limit.allow("conflict-self/"+addr, time.Now()) {
		c.log.Error(detail, "claimant", addr)
	}
	c.alarm(Alarm{Kind: AlarmNameConflict, Server: c.o.Name, Addr: addr, Detail: detail})
}

// checkStartConflict ends Start's joining. When the joins met a server
// alive with our name and another node key, this server is the newcomer
// and must not record: it returns the error Start fails with. A claimant
// that does not answer is a crashed earlier incarnation (a replaced
// data_dir has a new key) that peers have not declared dead yet; it is
// not a reason to stay down.
func (c *Cluster) checkStartConflict() error {
	c.mu.Lock()
	c.starting = false
	other := c.startConflict
	c.mu.Unlock()
	if other == nil {
		return nil
	}
	addr := other.Address()
	conn, err := net.DialTimeout("tcp", addr, c.t.tcpTimeout)
	if err != nil {
		c.log.Warn("peers know another holder of this server's name, which does not answer; taking the name over once it is declared dead", "other", addr)
		return nil
	}
	_ = conn.Close()
	return fmt.Errorf("buddy: another server named %q is alive at %s: every server of a site needs its own name (check name in this server's config); not starting", c.o.Name, addr)
}

func copyNode(n *memberlist.Node) *memberlist.Node {
	cp := *n
	cp.Addr = slices.Clone(n.Addr)
	cp.Meta = slices.Clone(n.Meta)
	return &cp
}

func (c *Cluster) memberLocked(name string) *member {
	m, ok := c.members[name]
	if !ok {
		m = &member{state: StateDead}
		c.members[name] = m
	}
	return m
}

func (c *Cluster) setMetaLocked(m *member, raw []byte) {
	if slices.Equal(m.raw, raw) && raw != nil {
		return
	}
	m.raw = slices.Clone(raw)
	meta, err := decodeMeta(raw)
	if err != nil {
		c.log.Warn("ignored undecodable meta from a peer", "err", err)
		meta = nodeMeta{}
	}
	m.meta = meta
}

// onSuspect is called when our own probe of node failed (memberlist logs
// it and has no hook). Suspicions gossiped by other nodes are not visible.
func (c *Cluster) onSuspect(node string) {
	c.mu.Lock()
	m, ok := c.members[node]
	changed := ok && m.state == StateAlive
	if changed {
		m.state, m.since = StateSuspect, time.Now()
	}
	c.mu.Unlock()
	if changed {
		c.log.Info("member suspect", "name", node)
		c.notify()
	}
}

func (c *Cluster) onKeyErr(line string) {
	addr := peerAddr(line)
	if c.limit.allow("keyerr/"+addr, time.Now()) {
		c.log.Error("gossip key mismatch: a peer sent gossip we cannot read, or could not read ours (check key_file and insecure on every server)", "peer", addr, "detail", line)
	}
	if c.o.OnKeyMismatch != nil {
		c.o.OnKeyMismatch(addr, line)
	}
}

// merge applies the higher-version-wins rule to entries from a peer.
func (c *Cluster) merge(entries []entry) {
	var republish bool
	var ownBody []byte
	var forward []entry
	var refused []*refusal
	changed := false
	c.mu.Lock()
	for _, e := range entries {
		if e.Server == "" {
			continue
		}
		cur, ok := c.records[e.Server]
		if e.Server == c.o.Name {
			// A peer remembers our record from an earlier life. Keep our
			// version above it, and never let a stale leave marker stand.
			// Only a record signed with our own key counts: anything else
			// is another member speaking for us.
			if c.closing {
				continue
			}
			if !ok || e.Version > cur.Version || (e.Version == cur.Version && e.Left && !cur.Left) {
				r := c.checkSignedLocked(e.Server, e.Key, e.Sig, signedEntry(e))
				if r == nil && e.Version > maxVersion {
					r = &refusal{kind: AlarmBadRecord, server: e.Server, key: e.Key, err: fmt.Errorf("version %d is beyond any clock", e.Version)}
				}
				if r != nil {
					refused = append(refused, r)
					continue
				}
				body := cur.Body
				if !c.ownSet && (!ok || e.Version > cur.Version) {
					body = e.Body
				}
				c.records[c.o.Name] = e
				republish, ownBody = true, body
			}
			continue
		}
		if ok && e.Version <= cur.Version {
			continue
		}
		if !ok && e.Version <= c.forgotten[e.Server] {
			continue // pruned here; a peer still holds the old copy
		}
		if r := c.vetEntryLocked(e); r != nil {
			refused = append(refused, r)
			continue
		}
		c.pinLocked(e.Server, e.Key)
		delete(c.forgotten, e.Server)
		if _, known := c.members[e.Server]; !known {
			// Heard of only through others: gone, as far as we know, from
			// now on (pruning counts from here, the safe side).
			m := c.memberLocked(e.Server)
			m.goneSince = time.Now()
			c.markMember(e.Server, m)
		}
		c.records[e.Server] = e
		c.markRecord(e)
		c.forgetSecretsLocked(e.Server)
		changed = true
		forward = append(forward, e)
		if m, ok := c.members[e.Server]; ok {
			switch {
			case e.Left && m.state == StateDead:
				m.state = StateLeft
			case !e.Left && m.state == StateLeft:
				m.state = StateDead
			}
		}
	}
	c.mu.Unlock()
	// Epidemic forwarding: a record new to us is gossiped on, so it reaches
	// every member in O(log n) gossip rounds instead of waiting for push/
	// pull, which at 100 members visits each peer only every half minute.
	// Each version is forwarded once per member (older versions are never
	// new), and a newer queued version replaces an older one.
	for _, e := range forward {
		if msg := encodeEntry([]byte{msgRecord}, e); len(msg) <= maxBroadcast {
			c.bq.QueueBroadcast(&broadcast{name: e.Server, msg: msg})
		}
	}
	for _, r := range refused {
		c.refuse("a record", r)
	}
	if republish {
		c.publishOwn(ownBody, false)
	}
	if changed {
		c.notify()
	}
}

func (c *Cluster) mergeSecrets(s secretEntry) {
	if s.From == c.o.Name {
		return
	}
	c.mu.Lock()
	cur, ok := c.secretsIn[s.From]
	newer := !ok || s.Version > cur.Version
	var r *refusal
	if newer {
		r = c.checkSignedLocked(s.From, s.Key, s.Sig, signedSecret(s))
		if r == nil && s.Version > maxVersion {
			r = &refusal{kind: AlarmBadRecord, server: s.From, key: s.Key, err: fmt.Errorf("version %d is beyond any clock", s.Version)}
		}
		newer = r == nil
	}
	if newer {
		c.pinLocked(s.From, s.Key)
		c.secretsIn[s.From] = s
		delete(c.dirty.forget, s.From)
		c.dirty.secrets[s.From] = s
		c.dirtyCount++
	}
	c.mu.Unlock()
	if r != nil {
		c.refuse("secrets", r)
		return
	}
	if newer {
		c.log.Info("received secrets", "from", s.From, "bytes", len(s.Body))
		kick(c.kickSave)
		c.notify()
	}
}

// forgetSecretsLocked drops the secrets server sent us when its latest
// record no longer names us as a buddy: an installer who takes a server
// off a buddy list expects it to stop holding those camera credentials,
// in memory and in cluster.db. c.mu held.
func (c *Cluster) forgetSecretsLocked(server string) {
	if _, ok := c.secretsIn[server]; !ok {
		return
	}
	e, ok := c.records[server]
	if !ok || e.Buddies == nil || slices.Contains(e.Buddies, c.o.Name) {
		return
	}
	delete(c.secretsIn, server)
	delete(c.dirty.secrets, server)
	c.dirty.forget[server] = true
	c.dirtyCount++
	kick(c.kickSave)
	c.log.Info("forgot secrets: no longer a buddy", "of", server)
}

// markRecord and markMember queue a value for the save loop; c.mu held.
func (c *Cluster) markRecord(e entry) {
	c.dirty.records[e.Server] = e
	c.dirtyCount++
	kick(c.kickSave)
}

func (c *Cluster) markMember(name string, m *member) {
	if name == c.o.Name {
		return
	}
	c.dirty.members[name] = lastSeen{Addr: m.addr, Meta: slices.Clone(m.raw), Gone: m.goneSince}
	c.dirtyCount++
	kick(c.kickSave)
}

// saveLoop persists changes off the gossip path: memberlist callbacks
// must not block on disk.
func (c *Cluster) saveLoop() {
	for {
		select {
		case <-c.done:
			return
		case <-c.kickSave:
			if err := c.flush(); err != nil {
				c.log.Error("persist cluster state", "err", err)
			}
		}
	}
}

func (c *Cluster) flush() error {
	c.mu.Lock()
	if c.dirtyCount == 0 {
		c.mu.Unlock()
		return nil
	}
	snap := c.dirty
	c.dirty, c.dirtyCount = newSnapshot(), 0
	c.mu.Unlock()
	if c.st == nil {
		return nil
	}
	return c.st.save(snap)
}

// secretsLoop re-sends secrets periodically so that a buddy that missed an
// update (or lost its disk) catches up.
func (c *Cluster) secretsLoop() {
	c.every(c.o.SecretsInterval, nil, func() { c.sendSecrets("") })
}

// rejoinLoop contacts addresses that should be in the cluster but are not:
// configured peers while none is alive, dead members (a partition heals
// only if someone reaches across; deadRejoiners servers try each), and new
// addresses of restarted servers.
func (c *Cluster) rejoinLoop() {
	c.every(c.t.rejoinInterval, c.kickRejoin, func() {
		if targets := c.rejoinTargets(); len(targets) > 0 {
			c.joinAll(context.Background(), targets)
		}
	})
}

// every calls f every d, and whenever kick receives (a nil kick never
// does), until the cluster closes: the shape of the background loops.
func (c *Cluster) every(d time.Duration, kick <-chan struct{}, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		case <-kick:
		}
		f()
	}
}

func (c *Cluster) rejoinTargets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	alive := map[string]bool{}
	peers := 0
	for name, m := range c.members {
		if m.state == StateAlive || m.state == StateSuspect {
			alive[m.addr] = true
			if name != c.o.Name {
				peers++
			}
		}
	}
	var out []string
	add := func(a string) {
		if a != "" && !alive[a] && !c.joining[a] && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if peers == 0 {
		for _, a := range c.o.Join {
			add(a)
		}
	}
	live := make([]string, 0, len(alive))
	for name, m := range c.members {
		if m.state == StateAlive || m.state == StateSuspect {
			live = append(live, name)
		}
	}
	for name, m := range c.members {
		if m.state == StateDead && name != c.o.Name && rejoinsDead(c.o.Name, name, live) {
			add(m.addr)
		}
	}
	for name, a := range c.conflicts {
		if m, ok := c.members[name]; ok && m.state != StateAlive && m.state != StateSuspect {
			add(a)
		}
	}
	return out
}

// deadRejoiners is how many live servers try to reach each dead one. A
// join is a full push/pull of the site's records, so with every server
// trying, a site of n servers would pay n of them a second for each dead
// server; a few suffice for a healed partition to be noticed, and each
// side of a partition picks its own few.
const deadRejoiners = 3

// rejoinsDead reports whether self is one of the deadRejoiners live
// servers chosen for dead by rendezvous hashing: every server with the
// same view of who is alive makes the same choice, without talking.
func rejoinsDead(self, dead string, live []string) bool {
	score := func(s string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(dead))
		h.Write([]byte{0})
		h.Write([]byte(s))
		return h.Sum64()
	}
	mine := score(self)
	higher := 0
	for _, s := range live {
		if s == self {
			continue
		}
		if sc := score(s); sc > mine || (sc == mine && s < self) {
			higher++
			if higher >= deadRejoiners {
				return false
			}
		}
	}
	return true
}

// joinAll joins each address on its own goroutine, so an unreachable peer
// costs at most one TCP timeout and never delays the others. It returns how
// many answered and the errors of the rest.
func (c *Cluster) joinAll(ctx context.Context, addrs []string) (int, []error) {
	type result struct {
		addr string
		err  error
	}
	results := make(chan result, len(addrs))
	started := 0
	for _, a := range addrs {
		c.mu.Lock()
		busy := c.joining[a]
		if !busy {
			c.joining[a] = true
		}
		c.mu.Unlock()
		if busy {
			continue
		}
		ok := c.goBackground(func() {
			_, err := c.ml.Join([]string{a})
			c.mu.Lock()
			delete(c.joining, a)
			c.mu.Unlock()
			results <- result{a, err}
		})
		if !ok {
			break // closing
		}
		started++
	}
	var collected []result
	for len(collected) < started {
		select {
		case r := <-results:
			collected = append(collected, r)
		case <-ctx.Done():
			// Join takes no context; the attempts still in flight end
			// within the TCP timeout and Close waits for them.
			started = len(collected)
		}
	}
	ok := 0
	var errs []error
	for _, r := range collected {
		if r.err != nil {
			r.err = errors.New(flatErr(r.err))
		}
		c.mu.Lock()
		prev := c.joinErrs[r.addr]
		if r.err == nil {
			delete(c.joinErrs, r.addr)
		} else {
			c.joinErrs[r.addr] = r.err.Error()
		}
		c.mu.Unlock()
		if r.err == nil {
			ok++
			if prev != "" {
				c.log.Info("joined", "addr", r.addr)
			}
			continue
		}
		errs = append(errs, r.err)
		if prev != r.err.Error() {
			lvl := c.log.Debug
			if isKeyError(r.err.Error()) {
				lvl = c.log.Error
			}
			lvl("join failed", "addr", r.addr, "err", r.err)
		}
	}
	return ok, errs
}

// broadcast is a record queued for gossip; a newer record of the same
// server replaces an older one still in the queue.
type broadcast struct {
	name string
	msg  []byte
}

func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	nb, ok := o.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.name
}
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
func (b *broadcast) Name() string    { return b.name }

// flatErr renders memberlist's multierror ("1 error occurred:\n\t* ...")
// as one line.
func flatErr(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "* "))
		if l == "" || strings.HasSuffix(l, "occurred:") {
			continue
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, "; ")
}

// peerWarn logs a complaint about what a peer sent, once per logEvery for
// each kind: garbage must not flood the log.
func (c *Cluster) peerWarn(msg string, args ...any) {
	if ok, n := c.limit.allowCount("peer/"+msg, time.Now()); ok {
		if n > 0 {
			args = append(args, "suppressed_similar", n)
		}
		c.log.Warn(msg, args...)
	}
}
