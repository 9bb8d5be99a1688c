package buddy

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults chosen so that a crashed peer is declared dead in about a second
// on a LAN (see doc.go for the timing model).
const (
	DefaultKeepalive       = 200 * time.Millisecond
	DefaultFailoverAfter   = 800 * time.Millisecond
	DefaultSecretsInterval = 30 * time.Second
	// DefaultForgetAfter is how long a server may stay gone (dead or left)
	// before its record, secrets and membership are pruned. It is also the
	// longest outage its buddies cover: once forgotten, its cameras are no
	// longer adopted. 30 days, the default storage retention, outlasts a
	// hardware replacement; a site that keeps dead servers' cameras
	// covered longer sets [cluster] forget_after.
	DefaultForgetAfter = 30 * 24 * time.Hour
	// DefaultClockSkewLimit is how far a peer's clock may be from ours
	// before AlarmClockSkew: footage from several servers is joined by
	// their clocks, and a GOP is about a second.
	DefaultClockSkewLimit = 500 * time.Millisecond
)

// gossipLabel separates buddyrec gossip from any other memberlist cluster
// that might share the network; it is authenticated when a key is set.
const gossipLabel = "buddyrec"

// Options configure a Cluster. Name and BindAddr are required.
type Options struct {
	// Name is this server's unique name in the site; it is also the gossip
	// node name and the key of its Record.
	Name string
	// BindAddr is "ip:port" to bind gossip (TCP and UDP). Port 0 picks a
	// free port, which is useful in tests.
	BindAddr string
	// Advertise is the optional "ip:port" peers should use to reach us,
	// for NAT or when binding 0.0.0.0. Port 0 means the bound port.
	Advertise string
	// Join lists peers ("ip:port"). Start tries them all once; while none
	// answers, joining is retried in the background.
	Join []string
	// Key is the 16, 24 or 32-byte AES-GCM gossip key. nil requires
	// Insecure, so credentials never travel in clear text by accident.
	Key []byte
	// Insecure allows plaintext gossip when Key is nil.
	Insecure bool
	// Keepalive is the probe interval (0 means DefaultKeepalive, 200ms).
	Keepalive time.Duration
	// FailoverAfter is how long a peer may stay silent before it is
	// declared dead (0 means DefaultFailoverAfter, 800ms). Must be at least
	// 3×Keepalive.
	FailoverAfter time.Duration
	// Buddies are the servers that take over MY cameras; only they receive
	// the secrets given to SetSecrets.
	Buddies []string
	// SecretsInterval is how often secrets are re-sent to alive buddies so
	// that one that missed an update catches up (0 means
	// DefaultSecretsInterval, 30s).
	SecretsInterval time.Duration
	// StateDir holds cluster.db, which persists the records and secrets
	// peers replicated to us. Empty means nothing is persisted.
	StateDir string
	// Logger receives buddy's and memberlist's logs; nil discards them.
	Logger *slog.Logger
	// OnKeyMismatch, when set, is told each time a peer sends gossip this
	// server cannot decrypt or read (another key, or plaintext): the
	// caller raises an alarm. addr is the peer's address ("" when
	// memberlist did not say); detail holds no key. It must not block.
	OnKeyMismatch func(addr, detail string)

	// NodeKey signs this server's records and secrets. nil loads (or makes)
	// StateDir/node.key, or, without StateDir, makes a key for this run.
	NodeKey ed25519.PrivateKey
	// CheckRecord, when set, vets a peer's record body before it is
	// accepted: it returns an error when the body disagrees with server,
	// the server it is filed under (e.g. names another server). Refused
	// records raise AlarmBadRecord. It must be fast and must not block.
	CheckRecord func(server string, body []byte) error
	// ForgetAfter is how long a server may be gone before it is pruned
	// (default DefaultForgetAfter); see doc.go.
	ForgetAfter time.Duration
	// ClockSkewLimit is the clock difference that raises AlarmClockSkew
	// (default 500ms).
	ClockSkewLimit time.Duration
	// Now is the clock this server reports to peers in probe acks; nil is
	// time.Now. Tests skew one member with it.
	Now func() time.Time
	// OnAlarm, when set, is told of integrity and health problems peers
	// cause (see AlarmKind), each at most once a minute per server and
	// kind. It must not block.
	OnAlarm func(Alarm)
}

// nodeMeta is what every server gossips with its heartbeats: its public
// signing key, which tells a restart of the same server (same key) from
// another server claiming its name, and names the author of a forged
// record. What else a server says of itself (addresses, load, capacity)
// travels in its record. Encoded it must fit memberlist's 512-byte meta
// limit.
type nodeMeta struct {
	NodeKey string `json:"pk,omitempty"` // base64
}

func encodeMeta(m nodeMeta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("meta is %d bytes encoded, limit is %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nodeMeta{}, fmt.Errorf("decode meta: %w", err)
	}
	return m, nil
}

// timing is the memberlist timing derived from Keepalive and FailoverAfter.
type timing struct {
	probeInterval, probeTimeout, gossipInterval time.Duration
	suspicionMult                               int
	tcpTimeout                                  time.Duration
	rejoinInterval                              time.Duration
}

// deriveTiming maps the two user-facing durations onto memberlist; doc.go
// explains the model.
func deriveTiming(keepalive, failoverAfter time.Duration) timing {
	sm := int(math.Round(float64(failoverAfter)/float64(keepalive))) - 2
	if sm < 2 {
		sm = 2
	}
	return timing{
		probeInterval:  keepalive,
		probeTimeout:   keepalive / 2,
		gossipInterval: max(keepalive/4, time.Millisecond),
		suspicionMult:  sm,
		tcpTimeout:     min(max(10*keepalive, time.Second), 10*time.Second),
		rejoinInterval: min(max(5*keepalive, time.Second), 30*time.Second),
	}
}

// withDefaults validates o and fills defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		return o, errors.New("buddy: name is required")
	}
	if len(o.Name) > maxNameLen {
		return o, fmt.Errorf("buddy: name is %d bytes, limit is %d", len(o.Name), maxNameLen)
	}
	if o.BindAddr == "" {
		return o, errors.New("buddy: bind address is required")
	}
	if o.Key == nil && !o.Insecure {
		return o, errors.New("buddy: no gossip key configured; set key_file (16, 24 or 32 bytes) or insecure = true to allow plaintext gossip")
	}
	if o.Key != nil {
		switch len(o.Key) {
		case 16, 24, 32:
		default:
			return o, fmt.Errorf("buddy: gossip key is %d bytes, must be 16, 24 or 32 (check key_file)", len(o.Key))
		}
	}
	if o.Keepalive == 0 {
		o.Keepalive = DefaultKeepalive
	}
	if o.FailoverAfter == 0 {
		o.FailoverAfter = DefaultFailoverAfter
	}
	if o.Keepalive < 10*time.Millisecond {
		return o, fmt.Errorf("buddy: keepalive %s is below 10ms", o.Keepalive)
	}
	if o.FailoverAfter < 3*o.Keepalive {
		return o, fmt.Errorf("buddy: failover_after %s must be at least 3× keepalive %s", o.FailoverAfter, o.Keepalive)
	}
	if o.SecretsInterval == 0 {
		o.SecretsInterval = DefaultSecretsInterval
	}
	if o.SecretsInterval < 0 {
		return o, fmt.Errorf("buddy: secrets interval %s is negative", o.SecretsInterval)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ForgetAfter == 0 {
		o.ForgetAfter = DefaultForgetAfter
	}
	if o.ForgetAfter < 0 {
		return o, fmt.Errorf("buddy: forget_after %s is negative", o.ForgetAfter)
	}
	if o.ClockSkewLimit <= 0 {
		o.ClockSkewLimit = DefaultClockSkewLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NodeKey == nil {
		var err error
		if o.StateDir != "" {
			o.NodeKey, err = LoadOrCreateNodeKey(o.StateDir)
		} else {
			_, o.NodeKey, err = ed25519.GenerateKey(rand.Reader)
		}
		if err != nil {
			return o, fmt.Errorf("buddy: %w", err)
		}
	}
	if len(o.NodeKey) != ed25519.PrivateKeySize {
		return o, fmt.Errorf("buddy: node key is %d bytes, want an Ed25519 private key", len(o.NodeKey))
	}
	return o, nil
}

func splitHostPort(what, hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("buddy: %s address %q: %w", what, hp, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("buddy: %s address %q: bad port", what, hp)
	}
	return host, port, nil
}

// memberlistConfig builds the memberlist configuration; delegates and the
// logger are filled in by Start.
func (o Options) memberlistConfig(t timing) (*memberlist.Config, error) {
	c := memberlist.DefaultLANConfig()
	c.Name = o.Name
	host, port, err := splitHostPort("bind", o.BindAddr)
	if err != nil {
		return nil, err
	}
	c.BindAddr, c.BindPort = host, port
	c.AdvertiseAddr, c.AdvertisePort = "", port
	if o.Advertise != "" {
		ah, ap, err := splitHostPort("advertise", o.Advertise)
		if err != nil {
			return nil, err
		}
		if ap == 0 {
			if port == 0 {
				return nil, fmt.Errorf("buddy: advertise address %q needs a port when binding port 0", o.Advertise)
			}
			ap = port
		}
		c.AdvertiseAddr, c.AdvertisePort = ah, ap
	}
	c.ProbeInterval = t.probeInterval
	c.ProbeTimeout = t.probeTimeout
	c.GossipInterval = t.gossipInterval
	c.SuspicionMult = t.suspicionMult
	// Bound the worst case when too few peers confirm a suspicion: without
	// this a 4+ node cluster may wait 6× the suspicion timeout.
	c.SuspicionMaxTimeoutMult = 2
	c.TCPTimeout = t.tcpTimeout
	c.PushPullInterval = 15 * time.Second
	// memberlist compresses every packet with LZW, allocating a fresh 16 KiB
	// table each time: at a 50 ms gossip tick that is most of a server's
	// gossip CPU and garbage (measured with bench planner). Sites are LANs,
	// where bytes are cheap and a recorder's CPU is not.
	c.EnableCompression = false
	// A server restarted on a new address may reclaim its name as soon as
	// its old incarnation is dead.
	c.DeadNodeReclaimTime = time.Nanosecond
	c.Label = gossipLabel
	if o.Key != nil {
		c.SecretKey = append([]byte(nil), o.Key...)
	}
	return c, nil
}
