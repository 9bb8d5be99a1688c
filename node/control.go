package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"runtime"
	"slices"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/webhook"
)

// controlView is what the control loop last saw and decided. The loop owns
// it; the API reads a copy under Node.mu.
type controlView struct {
	ctl     control.State
	members []buddy.Member
	// records are the records as decoded, self's included: addresses,
	// load and config hashes the rules do not read but the page shows.
	records map[string]recordBody
}

func (n *Node) controlLoop(ctx context.Context) {
	tick := time.NewTicker(n.reconcileEvery)
	defer tick.Stop()
	var changed <-chan struct{}
	if n.cluster != nil {
		changed = n.cluster.Changed()
	}
	n.reconcile(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		case req := <-n.reloads:
			n.applyReload(req, func() { n.reconcile(time.Now()) })
			continue
		}
		n.reconcile(time.Now())
	}
}

type decodedRecord struct {
	version uint64
	body    recordBody
	rules   control.Record
	err     error
}

// decodePeerRecord decodes a peer's record, reusing the last decoding while
// the version holds: a large site's records are megabytes of JSON, and the
// control loop reads them four times a second. A record that does not
// decode is logged once per version. The returned body's slices are shared
// with the cache and must not be modified in place.
func (n *Node) decodePeerRecord(name string, rec buddy.Record) (decodedRecord, error) {
	if d, ok := n.decoded[name]; ok && d.version == rec.Version {
		return d, d.err
	}
	body, err := decodeRecord(rec.Body)
	if err != nil {
		n.log.Warn("ignoring a peer record that does not decode", "server", name, "err", err)
	}
	if n.decoded == nil {
		n.decoded = map[string]decodedRecord{}
	}
	d := decodedRecord{version: rec.Version, body: body, rules: body.rulesRecord(rec.Version), err: err}
	n.decoded[name] = d
	return d, err
}

// selfRecord is this server's record as of now, with what the last step
// published.
func (n *Node) selfRecord(now time.Time, p control.Publish) recordBody {
	rc := n.running.Load()
	r := publicRecord(rc.cfg, n.started)
	r.ConfigHash = rc.hash
	r.Claims = p.Claims
	r.Recording = p.Recording
	r.Durable = p.Durable
	r.Stable = p.Stable
	r.Maintenance = n.maintenanceState().draining()
	r.Reclaim = p.Reclaim
	r.Standbys = p.Standbys
	r.Live = p.Live
	r.Load = n.load(now)
	return r
}

// loadEvery is how often the load published in this server's record is
// measured again. The record goes to every member of the site (over TCP
// once it exceeds a UDP packet), so it must change when cameras move, not
// each time the CPU figure wobbles; a status page is fine 10 s behind.
const loadEvery = 10 * time.Second

func (n *Node) load(now time.Time) api.Load {
	if !n.lastLoadAt.IsZero() && now.Sub(n.lastLoadAt) < loadEvery {
		return n.lastLoad
	}
	n.lastLoad, n.lastLoadAt = n.measureLoad(now), now
	return n.lastLoad
}

func (n *Node) measureLoad(now time.Time) api.Load {
	used, total := diskUsage(n.cfg.DataDir)
	// Rounded so that the replicated record changes only when a technician
	// would see a difference (and it is measured only every loadEvery):
	// memory to the nearest MiB, so a peer's page shows what ps does.
	const mib, gib = 1 << 20, 1 << 30
	return api.Load{
		CPU:         math.Round(n.cpu.sample(now, runtime.NumCPU())*100) / 100,
		MemoryBytes: (residentBytes() + mib/2) / mib * mib,
		DiskUsed:    used / gib * gib,
		DiskTotal:   total / gib * gib,
		Viewers:     n.viewers(),
	}
}

// reconcile runs one round: gather what the rules decide from, step them,
// and carry out the actions. Nothing here decides: the rules live in
// control/.
func (n *Node) reconcile(now time.Time) {
	in := n.gather(now)
	st, act := control.Step(n.ctl, in)
	n.ctl = st
	n.execute(now, st, act, in)
}

// gather reads the membership view, peers' records, the pipelines and the
// credentials this server holds.
func (n *Node) gather(now time.Time) control.Inputs {
	self := n.cfg.Name
	cfg := n.config()
	in := control.Inputs{
		Now:       now,
		Clustered: n.cluster != nil,
		Config: control.Config{
			Self:          publicRecord(cfg, n.started).rulesRecord(0),
			FailoverAfter: cfg.Cluster.FailoverAfter,
			FailbackAfter: cfg.Cluster.FailbackAfter,
		},
		Records:     map[string]control.Record{},
		Credentials: map[string]bool{},
	}
	m := n.maintenanceState()
	in.Config.Self.Maintenance, in.Stopping = m.draining(), m.stopping
	for _, c := range cfg.Cameras {
		in.Credentials[c.ID(self)] = true
	}
	n.gathered = map[string]recordBody{}
	if n.cluster != nil {
		view := n.cluster.View()
		n.members = view.Members
		in.DeclaredDeadAt = n.cluster.DeclaredDeadAt()
		for _, m := range view.Members {
			in.Members = append(in.Members, control.Member{Name: m.Name, Up: m.State.Up(), Since: m.Since, Left: m.State == buddy.StateLeft})
		}
		for name, rec := range view.Records {
			if name == self || len(rec.Body) == 0 {
				continue
			}
			d, err := n.decodePeerRecord(name, rec)
			if err != nil {
				continue
			}
			in.Records[name] = d.rules
			n.gathered[name] = d.body
			for cam := range n.homeSecrets(name) {
				in.Credentials[camera.New(name, cam).String()] = true
			}
		}
	}
	statuses := n.rec.Status()
	for _, s := range statuses {
		p := control.Pipeline{ID: s.ID, State: s.State, Failure: failureOf(s), Error: s.Error}
		if s.Standby != recorder.StandbyNone {
			in.Standbys = append(in.Standbys, p)
		} else {
			in.Pipelines = append(in.Pipelines, p)
		}
	}
	in.Footage = n.runFootage(statuses)
	return in
}

// failureOf classifies a pipeline's failure for the alarm it raises.
func failureOf(s recorder.Status) control.Failure {
	switch s.Reason {
	case recorder.ReasonAuth:
		return control.FailureAuth
	case recorder.ReasonStall:
		return control.FailureStalled
	}
	return control.FailureOther
}

// execute carries out a step's actions: logs, the record, the pipelines,
// events and notices. The events and notices are stamped now, when the
// step decided them (a server.down when its death was concluded), not
// when they are appended: that is after the pipelines were changed,
// which for twenty hot standbys taking over takes tens of milliseconds.
func (n *Node) execute(now time.Time, st control.State, act control.Actions, in control.Inputs) {
	for _, l := range act.Logs {
		n.log.Warn(l.Msg, l.Args...)
	}
	var body recordBody
	if act.Publish != nil {
		body = n.selfRecord(now, *act.Publish)
		if err := n.cluster.SetRecord(buddy.Record{Body: mustJSON(body)}); err != nil {
			n.log.Warn("publish record", "err", err)
		}
	} else {
		body = n.selfRecord(now, control.Publish{Stable: st.Stable(now, n.config().Cluster.FailbackAfter)})
	}
	records := n.gathered
	records[n.cfg.Name] = body
	n.mu.Lock()
	n.seen = controlView{ctl: st, members: n.members, records: records}
	n.mu.Unlock()
	if act.Settling {
		return
	}
	n.rec.Set(append(n.pipelineCameras(act.Cameras), n.standbyCameras(act.Standby)...))
	for _, e := range act.Events {
		switch e.Type {
		case control.TypeFailoverStarted:
			n.metrics.Failover(e.About)
		case control.TypeFailbackCompleted:
			n.metrics.Failback(n.cfg.Name)
		}
		n.appendEvent(events.Event{Time: now, Server: n.cfg.Name, Type: events.Type(e.Type), Severity: events.Severity(e.Severity),
			Cameras: e.Cameras, Text: e.Text, Condition: e.Condition, Resolves: e.Resolves})
	}
	for _, c := range act.Notices {
		nt := n.notice(c)
		nt.Time = now.UTC()
		n.notify(nt)
	}
}

// pipelineCameras turns camera ids into the recorder's cameras, with URLs
// from this server's config or from the secrets the home replicated here.
func (n *Node) pipelineCameras(ids []string) []recorder.Camera {
	self := n.cfg.Name
	own := n.ownCameras()
	var secrets map[string]map[string]secretCamera
	out := make([]recorder.Camera, 0, len(ids))
	for _, raw := range ids {
		id, err := camera.Parse(raw)
		if err != nil {
			continue
		}
		if id.Home == self {
			if c, ok := own[raw]; ok {
				out = append(out, c)
			}
			continue
		}
		if _, ok := secrets[id.Home]; !ok {
			if secrets == nil {
				secrets = map[string]map[string]secretCamera{}
			}
			secrets[id.Home] = n.homeSecrets(id.Home)
		}
		if sc, ok := secrets[id.Home][id.Name]; ok {
			out = append(out, recorder.Camera{ID: raw, Home: id.Home, URL: sc.URL, Transport: sc.Transport})
		}
	}
	return out
}

// ownCameras is this server's configured cameras as the recorder takes
// them, by id, built once per configuration in force: the control loop
// asks four times a second, and rebuilding it each round was the largest
// allocation of a 250-camera server's loop (ids joined, a map refilled).
// Only the control loop calls it; the map must not be modified.
func (n *Node) ownCameras() map[string]recorder.Camera {
	rc := n.running.Load()
	if n.own.rc == rc {
		return n.own.byID
	}
	self := n.cfg.Name
	byID := make(map[string]recorder.Camera, len(rc.cfg.Cameras))
	for _, c := range rc.cfg.Cameras {
		id := c.ID(self)
		byID[id] = recorder.Camera{ID: id, Home: self, URL: c.URL, Transport: c.Transport}
	}
	n.own.rc, n.own.byID = rc, byID
	return byID
}

// homeSecrets is what home replicated here of its cameras' credentials,
// decoded once per change.
func (n *Node) homeSecrets(home string) map[string]secretCamera {
	if n.cluster == nil {
		return nil
	}
	raw, ok := n.cluster.Secrets(home)
	if !ok {
		return nil
	}
	if c, ok := n.secrets[home]; ok && bytes.Equal(c.raw, raw) {
		return c.cameras
	}
	out := map[string]secretCamera{}
	var s secretBody
	if err := json.Unmarshal(raw, &s); err != nil {
		n.log.Warn("inventory secrets from a buddy do not decode", "home", home, "err", err)
	}
	for _, c := range s.Cameras {
		out[c.Name] = c
	}
	if n.secrets == nil {
		n.secrets = map[string]decodedSecrets{}
	}
	n.secrets[home] = decodedSecrets{raw: bytes.Clone(raw), cameras: out}
	return out
}

type decodedSecrets struct {
	raw     []byte
	cameras map[string]secretCamera
}

// notice turns a rule's notice into a PSIM notice. One that names cameras
// this server serves carries its address and each camera's live URL.
func (n *Node) notice(c control.Notice) webhook.Notice {
	nt := webhook.Notice{Type: c.Type, FailedServer: c.FailedServer, Text: c.Text}
	if c.Serving {
		nt = n.takeoverNotice(c.Type, c.FailedServer, c.Cameras)
		nt.Text = c.Text
	} else if c.Moved != nil {
		nt.Cameras = n.movedCameras(c.Cameras, c.Moved)
	} else {
		for _, id := range c.Cameras {
			nt.Cameras = append(nt.Cameras, webhook.Camera{ID: id})
		}
	}
	for _, a := range c.Aspects {
		nt.Aspects = append(nt.Aspects, webhook.Aspect{Kind: a.Kind, Name: a.Name})
	}
	return nt
}

// takeoverNotice names the address that now serves the cameras.
func (n *Node) takeoverNotice(typ, failed string, ids []string) webhook.Notice {
	httpAddr := n.reachable(n.cfg.Listen.HTTP)
	host, _, _ := net.SplitHostPort(httpAddr)
	nt := webhook.Notice{
		Type:         typ,
		FailedServer: failed,
		Address:      &webhook.Address{IP: host, HTTP: n.peerScheme() + "://" + httpAddr},
	}
	if n.cfg.Listen.RTSP != "" {
		nt.Address.RTSP = "rtsp://" + n.reachable(n.cfg.Listen.RTSP)
	}
	for _, id := range ids {
		nt.Cameras = append(nt.Cameras, webhook.Camera{ID: id, LiveURL: n.liveURL(id)})
	}
	return nt
}

// liveURL is where a viewer plays camera id from this server, "" without
// a live re-stream.
func (n *Node) liveURL(id string) string {
	if n.cfg.Listen.RTSP == "" {
		return ""
	}
	return "rtsp://" + n.reachable(n.cfg.Listen.RTSP) + "/" + id
}

// reachable turns a listen address into one others can dial: a wildcard
// host (":8554", "0.0.0.0:8554", "[::]:8554") is replaced by the host this
// server gossips from, which its peers already reach.
func (n *Node) reachable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	for _, addr := range []string{n.cfg.Listen.Gossip, n.gossipAddr()} {
		if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				return net.JoinHostPort(h, port)
			}
		}
	}
	return listen
}

func (n *Node) gossipAddr() string {
	if n.cluster == nil {
		return ""
	}
	return n.cluster.Addr()
}

// notify queues a PSIM notice in the durable outbox; delivery happens on
// the outbox's own goroutines.
func (n *Node) notify(nt webhook.Notice) {
	nt.Server = n.cfg.Name
	if nt.Time.IsZero() {
		nt.Time = time.Now().UTC()
	}
	if err := n.outbox.Enqueue(nt); err != nil {
		n.log.Error("queue PSIM notice", "type", nt.Type, "err", err)
	}
}

// sortedKeys is m's keys in order; never nil, so that an empty one is a
// JSON list, not null.
func sortedKeys[V any](m map[string]V) []string {
	out := slices.AppendSeq(make([]string, 0, len(m)), maps.Keys(m))
	slices.Sort(out)
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only plain structs are marshalled here
	}
	return b
}
