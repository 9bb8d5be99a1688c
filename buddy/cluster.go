package buddy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is how this node sees a member of the site. The values are the
// wire strings of the API ("state" of a server) and of metrics labels.
type State string

// Member states reported in View.
const (
	// StateAlive: the member answers probes.
	StateAlive State = "alive"
	// StateSuspect: this node's own probe failed; the member is still
	// counted as up until memberlist declares it dead.
	StateSuspect State = "suspect"
	// StateDead: the member stopped answering without saying goodbye.
	StateDead State = "dead"
	// StateLeft: the member announced that it leaves (a clean shutdown).
	StateLeft State = "left"
)

// Up reports whether s counts as a running server: alive or suspect.
func (s State) Up() bool { return s == StateAlive || s == StateSuspect }

// Record is a server's replicated, versioned state. Buddy treats Body as
// opaque; the higher Version wins everywhere.
type Record struct {
	Server  string
	Version uint64
	Body    []byte
}

// Member is one server of the site as this node sees it. Servers that are
// gone (dead or left) stay listed with their last known address, so
// callers see the whole site.
type Member struct {
	Name  string
	Addr  string // gossip "ip:port"; last known when not alive
	State State
	// Since is when this node saw the state begin; zero when the state was
	// only learnt from persisted or replicated data.
	Since time.Time
}

// View is a consistent copy of the membership and of every record.
type View struct {
	Self    string
	Members []Member          // sorted by name, self included
	Records map[string]Record // by server name, including dead servers
}

// member is the mutable per-server state behind Member.
type member struct {
	addr  string
	meta  nodeMeta
	raw   []byte // meta as gossiped
	state State
	since time.Time
	node  *memberlist.Node // copy, for SendReliable; nil unless alive
	// goneSince is when the server was last seen dying or leaving (or
	// first heard of while gone); zero while alive. See prune.
	goneSince time.Time
}

// Cluster is this server's membership in the site. Its methods are safe for
// concurrent use.
type Cluster struct {
	o       Options
	t       timing
	log     *slog.Logger
	ml      *memberlist.Memberlist // set before ready is closed
	ready   chan struct{}
	bq      *memberlist.TransmitLimitedQueue
	st      *store // nil without StateDir
	buddies map[string]bool
	pub     []byte   // this server's node public key
	limit   *limiter // log lines about peer input
	alarms  *limiter // OnAlarm calls

	mu        sync.Mutex
	closing   bool
	meta      []byte
	records   map[string]entry
	ownSet    bool // SetRecord was called in this lifetime
	secretsIn map[string]secretEntry
	// declaredDeadAt: see DeclaredDeadAt.
	declaredDeadAt time.Time
	mine           secretEntry
	mineSet        bool
	members        map[string]*member
	conflicts      map[string]string // name → address of a newer claimant
	joining        map[string]bool   // addresses with a join in flight
	joinErrs       map[string]string // last join error per address, logged on change
	dirty          snapshot
	dirtyCount     int
	pins           map[string][]byte // server → pinned node key
	forgotten      map[string]uint64 // pruned server → tombstone version
	clocks         map[string]*clockState
	// starting is true while Start joins; a name conflict seen then means
	// this server is the newcomer (startConflict holds the claimant).
	starting      bool
	startConflict *memberlist.Node

	changed    chan struct{}
	kickSave   chan struct{}
	kickRejoin chan struct{}
	done       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// Start binds gossip, loads persisted state, joins the peers in o.Join and
// keeps the membership until Close or until ctx is done (which closes the
// cluster gracefully). When peers answer but speak another gossip key,
// Start fails; when none answers, Start succeeds and keeps retrying.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	t := deriveTiming(o.Keepalive, o.FailoverAfter)
	cfg, err := o.memberlistConfig(t)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		o:          o,
		t:          t,
		log:        o.Logger.With("component", "buddy"),
		ready:      make(chan struct{}),
		buddies:    map[string]bool{},
		records:    map[string]entry{},
		secretsIn:  map[string]secretEntry{},
		members:    map[string]*member{},
		conflicts:  map[string]string{},
		joining:    map[string]bool{},
		joinErrs:   map[string]string{},
		pins:       map[string][]byte{},
		forgotten:  map[string]uint64{},
		clocks:     map[string]*clockState{},
		limit:      newLimiter(logEvery),
		alarms:     newLimiter(time.Minute),
		starting:   true,
		pub:        o.NodeKey.Public().(ed25519.PublicKey),
		dirty:      newSnapshot(),
		changed:    make(chan struct{}, 1),
		kickSave:   make(chan struct{}, 1),
		kickRejoin: make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	for _, b := range o.Buddies {
		if b != o.Name {
			c.buddies[b] = true
		}
	}
	if c.meta, err = encodeMeta(nodeMeta{NodeKey: base64.StdEncoding.EncodeToString(c.pub)}); err != nil {
		return nil, err
	}
	if o.StateDir != "" {
		if err := c.loadState(); err != nil {
			return nil, err
		}
	}
	if pin, ok := c.pins[o.Name]; !ok || !bytes.Equal(pin, c.pub) {
		if ok {
			c.log.Warn("this server's node key changed since cluster.db was written; peers that pinned the old one refuse its records until `buddyrec forget` on each", "key", Fingerprint(c.pub))
		}
		c.pins[o.Name] = c.pub
		c.dirty.pins[o.Name] = c.pub
		c.dirtyCount++
	}
	if o.Key == nil && len(c.buddies) > 0 {
		c.log.Warn("gossip is not encrypted (insecure); secrets sent to buddies travel in clear text")
	}

	d := &mlDelegate{c: c}
	cfg.Delegate = d
	cfg.Events = d
	cfg.Conflict = d
	cfg.Ping = d
	cfg.Logger = log.New(&mlLogWriter{log: o.Logger, onSuspect: c.onSuspect, onKeyErr: c.onKeyErr, onRefuted: c.onRefuted, limit: c.limit}, "", 0)
	c.bq = &memberlist.TransmitLimitedQueue{NumNodes: c.numAlive, RetransmitMult: cfg.RetransmitMult}

	ml, err := memberlist.Create(cfg)
	if err != nil {
		c.closeStore()
		return nil, fmt.Errorf("buddy: start gossip on %s: %w", o.BindAddr, err)
	}
	c.ml = ml
	close(c.ready)

	if len(o.Join) > 0 {
		joined, errs := c.joinAll(ctx, o.Join)
		if joined == 0 {
			var keyErrs []string
			for _, e := range errs {
				if isKeyError(e.Error()) {
					keyErrs = append(keyErrs, e.Error())
				}
			}
			switch {
			case ctx.Err() != nil:
				c.abort()
				return nil, fmt.Errorf("buddy: join %s: %w", strings.Join(o.Join, ", "), ctx.Err())
			case len(keyErrs) > 0:
				c.abort()
				return nil, fmt.Errorf("buddy: gossip key mismatch: %s (check key_file and insecure on every server)", strings.Join(keyErrs, "; "))
			default:
				c.log.Warn("no peer answered yet; retrying in the background", "join", o.Join, "err", errors.Join(errs...))
			}
		}
	}
	if err := c.checkStartConflict(); err != nil {
		c.abort()
		return nil, err
	}

	c.mu.Lock()
	own, ok := c.records[o.Name]
	c.mu.Unlock()
	if ok && own.Left {
		// We closed last time; announce that we are back so a later crash
		// is reported as dead, not left.
		c.publishOwn(own.Body, false)
	}

	c.goBackground(c.saveLoop)
	c.goBackground(c.rejoinLoop)
	c.goBackground(c.secretsLoop)
	c.goBackground(c.pruneLoop)
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Close()
		case <-c.done:
		}
	}()
	c.log.Info("gossip started", "name", o.Name, "addr", c.localAddr(), "encrypted", o.Key != nil,
		"probe_interval", t.probeInterval, "suspicion_mult", t.suspicionMult)
	return c, nil
}

func newSnapshot() snapshot {
	return snapshot{records: map[string]entry{}, secrets: map[string]secretEntry{}, members: map[string]lastSeen{}, forget: map[string]bool{},
		pins: map[string][]byte{}, unpin: map[string]bool{}, pruned: map[string]uint64{}}
}

func (c *Cluster) loadState() error {
	st, err := openStore(c.o.StateDir)
	if err != nil {
		return fmt.Errorf("buddy: %w", err)
	}
	snap, bad, err := st.load()
	if err != nil {
		_ = st.close()
		return fmt.Errorf("buddy: %w", err)
	}
	if len(bad) > 0 {
		c.log.Error("skipped undecodable values in cluster state", "path", st.path, "keys", bad)
	}
	c.st = st
	c.records = snap.records
	c.secretsIn = snap.secrets
	c.pins = snap.pins
	c.forgotten = snap.forgotten
	for name, e := range c.records {
		// Entries signed before pins existed pin their key now.
		if _, ok := c.pins[name]; !ok && e.Sig != nil && name != c.o.Name {
			c.pinLocked(name, e.Key)
		}
	}
	for from := range c.secretsIn {
		c.forgetSecretsLocked(from)
	}
	now := time.Now()
	for name, ls := range snap.members {
		if name == c.o.Name {
			continue
		}
		// Pruning counts from when the server was seen going; a file
		// from before that was kept counts from now, the safe side.
		gone := ls.Gone
		if gone.IsZero() || gone.After(now) {
			gone = now
		}
		m := &member{addr: ls.Addr, raw: ls.Meta, state: StateDead, goneSince: gone}
		if meta, err := decodeMeta(ls.Meta); err == nil {
			m.meta = meta
		}
		if e, ok := c.records[name]; ok && e.Left {
			m.state = StateLeft
		}
		c.members[name] = m
	}
	for name, e := range c.records {
		if _, ok := c.members[name]; !ok && name != c.o.Name {
			m := &member{state: StateDead, goneSince: now}
			if e.Left {
				m.state = StateLeft
			}
			c.members[name] = m
		}
	}
	return nil
}

// Shutdown stops gossip at once without telling anyone, as a crash or a
// power cut would: peers detect the silence and declare this server dead.
// Close is the graceful way out. Use one or the other, once.
func (c *Cluster) Shutdown() {
	c.closeOnce.Do(func() { c.abort() })
}

// abort stops gossip and the background goroutines and closes the state
// store: Shutdown, and the undoing of a failed Start.
func (c *Cluster) abort() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	close(c.done)
	_ = c.ml.Shutdown()
	c.wg.Wait()
	c.closeStore()
}

func (c *Cluster) closeStore() {
	if c.st != nil {
		if err := c.st.close(); err != nil {
			c.log.Error("close cluster state", "err", err)
		}
	}
}

// goBackground runs f on a goroutine that Close waits for. It does nothing
// once Close has begun.
func (c *Cluster) goBackground(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

func (c *Cluster) localAddr() string {
	return c.ml.LocalNode().Address()
}

// notify wakes Changed's reader; notifications coalesce.
func (c *Cluster) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// numAlive sizes the broadcast queue's retransmissions.
func (c *Cluster) numAlive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.members {
		if m.state == StateAlive || m.state == StateSuspect {
			n++
		}
	}
	return max(n, 1)
}

// DeclaredDeadAt is when this server last learned that peers had declared
// it dead while it ran, zero if never. Its buddies adopted its cameras
// then; a caller that lets cameras come back only to a server healthy for
// a while counts its health from here, so a flapping server does not pull
// cameras back and forth.
func (c *Cluster) DeclaredDeadAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.declaredDeadAt
}

func (c *Cluster) onRefuted() {
	c.mu.Lock()
	c.declaredDeadAt = time.Now()
	c.mu.Unlock()
	c.log.Warn("peers had declared this server dead; refuted")
	c.notify()
}

// Changed returns a channel that receives a value after any change to the
// view (membership, meta, records, received secrets). Notifications
// coalesce: one value may stand for many changes, so read View after it.
func (c *Cluster) Changed() <-chan struct{} { return c.changed }

// Name returns this server's name.
func (c *Cluster) Name() string { return c.o.Name }

// Addr returns the gossip address peers use to reach this server.
func (c *Cluster) Addr() string { return c.localAddr() }

// SetRecord replaces this server's record and replicates it to every
// member. r.Server must be empty or this server's name; r.Version is
// ignored: buddy assigns a version above any this server used before,
// here or as remembered by peers.
func (c *Cluster) SetRecord(r Record) error {
	if r.Server != "" && r.Server != c.o.Name {
		return fmt.Errorf("buddy: set record: server %q is not this server %q", r.Server, c.o.Name)
	}
	if len(r.Body) > maxBodyLen {
		return fmt.Errorf("buddy: set record: body is %d bytes, limit is %d", len(r.Body), maxBodyLen)
	}
	c.mu.Lock()
	closing := c.closing
	cur, had := c.records[c.o.Name]
	same := had && c.ownSet && !cur.Left && bytes.Equal(cur.Body, r.Body)
	c.mu.Unlock()
	if closing {
		return errors.New("buddy: set record: cluster closed")
	}
	if same {
		return nil
	}
	c.publishOwn(bytes.Clone(r.Body), false)
	return nil
}

// nextVersion returns a version above floor that also survives a restart
// without persisted state: wall-clock nanoseconds when they are higher.
// Floors come only from this server's own signed records, so they stay
// below maxVersion and floor+1 never wraps; the guard keeps it so even if
// a broken clock once reported a date past 2262.
func nextVersion(floor uint64) uint64 {
	v := uint64(max(time.Now().UnixNano(), 0))
	if v <= floor {
		v = floor + 1
	}
	return min(v, maxVersion)
}

// publishOwn stores a new version of this server's record and sends it to
// everyone. left marks the record published by Close.
func (c *Cluster) publishOwn(body []byte, left bool) entry {
	c.mu.Lock()
	e := c.sign(entry{Server: c.o.Name, Version: nextVersion(c.records[c.o.Name].Version), Body: body, Left: left,
		Buddies: append([]string{}, c.o.Buddies...)})
	c.records[c.o.Name] = e
	if !left {
		c.ownSet = true
	}
	c.markRecord(e)
	c.mu.Unlock()
	c.notify()
	c.replicate(e)
	return e
}

// maxBroadcast is the largest record sent by UDP gossip; larger ones go
// by TCP to each member.
const maxBroadcast = 1024

// replicate sends this server's record e to every alive member: when it
// is small, one UDP packet to each and piggybacked on gossip; over TCP
// otherwise.
//
// Gossip alone is not enough in a small site. memberlist spends a
// broadcast's transmit budget (RetransmitMult × log n copies in all, not
// per member) on whatever packets leave first, acks to one peer's pings
// included, so every copy may reach the same peer. An honest record is
// then forwarded by that peer, but one it refuses (an intruder's) is
// not, and the other members would hear of it, and raise no alarm, until
// the next push-pull exchange, 15 s or more on. The direct packets reach
// each member at once; gossip still carries the record to any a packet
// missed.
func (c *Cluster) replicate(e entry) {
	msg := encodeEntry([]byte{msgRecord}, e)
	if len(msg) <= maxBroadcast {
		for _, n := range c.aliveNodes() {
			if err := c.ml.SendBestEffort(n, msg); err != nil {
				c.log.Debug("send failed", "what", "record", "to", n.Name, "err", err)
			}
		}
		c.bq.QueueBroadcast(&broadcast{name: e.Server, msg: msg})
		return
	}
	for _, n := range c.aliveNodes() {
		c.sendAsync(n, msg, "record")
	}
}

// aliveNodes returns copies of the alive peers' nodes (self excluded).
func (c *Cluster) aliveNodes() []*memberlist.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*memberlist.Node
	for name, m := range c.members {
		if name != c.o.Name && m.node != nil && (m.state == StateAlive || m.state == StateSuspect) {
			out = append(out, m.node)
		}
	}
	return out
}

// sendAsync sends msg reliably to n on its own goroutine, so that one slow
// or unreachable peer never delays another.
func (c *Cluster) sendAsync(n *memberlist.Node, msg []byte, what string) {
	c.goBackground(func() {
		if err := c.ml.SendReliable(n, msg); err != nil {
			c.log.Debug("send failed", "what", what, "to", n.Name, "err", err)
		}
	})
}

// SetSecrets sets this server's secrets (e.g. camera URLs with
// credentials) and sends them to every alive buddy. Only servers listed in
// Options.Buddies ever receive them.
func (c *Cluster) SetSecrets(s []byte) error {
	if len(s) > maxBodyLen {
		return fmt.Errorf("buddy: set secrets: %d bytes, limit is %d", len(s), maxBodyLen)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return errors.New("buddy: set secrets: cluster closed")
	}
	if c.mineSet && bytes.Equal(c.mine.Body, s) {
		c.mu.Unlock()
		return nil
	}
	c.mine = c.signSecret(secretEntry{From: c.o.Name, Version: nextVersion(c.mine.Version), Body: bytes.Clone(s)})
	c.mineSet = true
	c.mu.Unlock()
	c.sendSecrets("")
	return nil
}

// sendSecrets sends my secrets to the named buddy, or to every alive buddy
// when only is empty.
func (c *Cluster) sendSecrets(only string) {
	c.mu.Lock()
	if !c.mineSet {
		c.mu.Unlock()
		return
	}
	msg := encodeSecret([]byte{msgSecrets}, c.mine)
	var targets []*memberlist.Node
	for name, m := range c.members {
		if !c.buddies[name] || (only != "" && name != only) || m.node == nil {
			continue
		}
		if m.state == StateAlive || m.state == StateSuspect {
			targets = append(targets, m.node)
		}
	}
	c.mu.Unlock()
	for _, n := range targets {
		c.sendAsync(n, msg, "secrets")
	}
}

// Secrets returns the secrets server sent us as its buddy, as last
// received (and persisted).
func (c *Cluster) Secrets(server string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.secretsIn[server]
	if !ok {
		return nil, false
	}
	return bytes.Clone(s.Body), true
}

// View returns a copy of the membership and records.
func (c *Cluster) View() View {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := View{Self: c.o.Name, Records: make(map[string]Record, len(c.records))}
	for name, e := range c.records {
		v.Records[name] = Record{Server: e.Server, Version: e.Version, Body: bytes.Clone(e.Body)}
	}
	v.Members = c.membersLocked()
	return v
}

// Members is the membership part of View, without copying every record:
// for callers that only ask who is alive, often.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.membersLocked()
}

func (c *Cluster) membersLocked() []Member {
	out := make([]Member, 0, len(c.members))
	for name, m := range c.members {
		out = append(out, Member{Name: name, Addr: m.addr, State: m.state, Since: m.since})
	}
	for name, e := range c.records {
		if _, ok := c.members[name]; ok {
			continue
		}
		st := StateDead
		if e.Left {
			st = StateLeft
		}
		out = append(out, Member{Name: name, State: st})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Close announces that this server leaves (peers report it "left", not
// "dead"), leaves the gossip, shuts it down and persists state. It is safe
// to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Cluster) close() error {
	// Tell every alive peer directly, so they mark us left even if the
	// memberlist leave message reaches them first.
	c.mu.Lock()
	body := c.records[c.o.Name].Body
	c.mu.Unlock()
	e := c.publishOwnQuiet(body)
	msg := encodeEntry([]byte{msgRecord}, e)
	var wg sync.WaitGroup
	for _, n := range c.aliveNodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.ml.SendReliable(n, msg); err != nil {
				c.log.Debug("send leave notice failed", "to", n.Name, "err", err)
			}
		}()
	}
	wg.Wait()

	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	close(c.done)

	var errs []error
	if err := c.ml.Leave(max(c.t.tcpTimeout/2, 4*c.t.gossipInterval)); err != nil {
		errs = append(errs, fmt.Errorf("buddy: leave: %w", err))
	}
	if err := c.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("buddy: shutdown gossip: %w", err))
	}
	c.wg.Wait()
	if err := c.flush(); err != nil {
		errs = append(errs, err)
	}
	if c.st != nil {
		if err := c.st.close(); err != nil {
			errs = append(errs, fmt.Errorf("buddy: %w", err))
		}
	}
	c.log.Info("gossip stopped", "name", c.o.Name)
	return errors.Join(errs...)
}

// publishOwnQuiet stores the leave version of our record without queueing
// a gossip broadcast (Close sends it over TCP itself).
func (c *Cluster) publishOwnQuiet(body []byte) entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.sign(entry{Server: c.o.Name, Version: nextVersion(c.records[c.o.Name].Version), Body: body, Left: true,
		Buddies: append([]string{}, c.o.Buddies...)})
	c.records[c.o.Name] = e
	c.markRecord(e)
	return e
}
