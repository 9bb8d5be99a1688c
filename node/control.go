package node

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/buddyrec/buddyrec/api"
	"math"
	"net"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/failover"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/webhook"
)

// handoffTimeout bounds make-before-break: a camera that moves away from
// this server keeps recording here until its new owner reports recording it,
// or this long has passed.
const handoffTimeout = 20 * time.Second

// failbackKey keys the pending failback report among the pending takeovers
// (which are keyed by home server name, and no server is called this).
const failbackKey = "/failback"

// adoptionReport bounds how long the takeover notice waits for every adopted
// camera to reach "recording"; after it the notice names what is recording.
const adoptionReport = 15 * time.Second

// controlState is the control loop's memory between rounds. The loop owns
// it; the API reads a copy under Node.mu.
type controlState struct {
	members   []buddy.Member
	records   map[string]recordBody
	alive     map[string]bool
	plan      failover.Plan
	assigned  map[string]bool      // camera ids my plan gives me
	releasing map[string]time.Time // camera ids moving away, with the deadline
	recording map[string]bool      // camera ids with a pipeline here
	cameras   map[string]string    // camera id -> last seen recorder state
	pending   map[string]*takeover // home -> takeover waiting to be reported
	unplaced  map[string]string    // camera id -> reason, last round
	stale     map[string]uint64    // server -> record version it had when seen coming back
	aspects   map[string][]aspectRef
}

// takeover is one adoption of a failed server's cameras by this server.
type takeover struct {
	home    string
	cameras []string
	started time.Time
}

func (n *Node) controlLoop(ctx context.Context) {
	n.mu.Lock()
	n.state = controlState{
		records:   map[string]recordBody{},
		alive:     map[string]bool{},
		assigned:  map[string]bool{},
		releasing: map[string]time.Time{},
		recording: map[string]bool{},
		cameras:   map[string]string{},
		pending:   map[string]*takeover{},
		unplaced:  map[string]string{},
	}
	n.mu.Unlock()
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
		}
		n.reconcile(time.Now())
	}
}

type decodedRecord struct {
	version uint64
	body    recordBody
	err     error
}

// decodePeerRecord decodes a peer's record, reusing the last decoding while
// the version holds: a large site's records are megabytes of JSON, and the
// control loop reads them four times a second. A record that does not
// decode is logged once per version. The returned body's slices are shared
// with the cache and must not be modified in place.
func (n *Node) decodePeerRecord(name string, rec buddy.Record) (recordBody, error) {
	if d, ok := n.decoded[name]; ok && d.version == rec.Version {
		return d.body, d.err
	}
	body, err := decodeRecord(rec.Body)
	if err != nil {
		n.log.Warn("ignoring a peer record that does not decode", "server", name, "err", err)
	}
	if n.decoded == nil {
		n.decoded = map[string]decodedRecord{}
	}
	n.decoded[name] = decodedRecord{version: rec.Version, body: body, err: err}
	return body, err
}

// selfRecord is this server's record as of now.
func (n *Node) selfRecord(now time.Time, claims, recording []string) recordBody {
	r := publicRecord(n.cfg, n.started)
	r.Claims = claims
	r.Recording = recording
	r.Stable = now.Sub(n.healthySince) >= n.cfg.Cluster.FailbackAfter
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
	// would see a difference.
	const mib, gib = 1 << 20, 1 << 30
	return api.Load{
		CPU:         math.Round(n.cpu.sample(now, runtime.NumCPU())*100) / 100,
		MemoryBytes: residentBytes() / (16 * mib) * (16 * mib),
		DiskUsed:    used / gib * gib,
		DiskTotal:   total / gib * gib,
		Viewers:     n.viewers(),
	}
}

// reconcile runs one round: read the view, plan, start and stop pipelines,
// publish what this server now records, and raise events for what changed.
func (n *Node) reconcile(now time.Time) {
	self := n.cfg.Name
	// A server that was hung (SIGSTOP, a VM pause, a stalled disk) for
	// longer than failover_after has been declared dead by its buddies:
	// it counts as freshly recovered, so its cameras come back only after
	// failback_after of health, like after a crash. Buddies declare a
	// silent server dead after about failover_after; half of it already
	// marks a pause no healthy control loop takes.
	//
	// The same holds when peers declared it dead while it ran (lost
	// packets, a stall too short for the check above): they adopted its
	// cameras, so it drops its claims and settles as after a pause, and
	// a flapping server never pulls cameras back and forth.
	recovered := false
	if !n.lastRound.IsZero() && now.Sub(n.lastRound) > n.cfg.Cluster.FailoverAfter/2 {
		n.log.Warn("this server was unresponsive; treating it as recovered from a failure", "paused", now.Sub(n.lastRound).Round(time.Millisecond))
		recovered = true
	}
	if n.cluster != nil && !n.healthySince.IsZero() && n.cluster.DeclaredDeadAt().After(n.healthySince) {
		n.log.Warn("peers declared this server dead; treating it as recovered from a failure: its cameras come back only after failback_after", "failback_after", n.cfg.Cluster.FailbackAfter)
		recovered = true
	}
	if recovered {
		n.healthySince = now
		n.settleUntil = now.Add(n.cfg.Cluster.FailoverAfter)
		n.mu.Lock()
		n.state.assigned = map[string]bool{} // its claims died with it
		n.mu.Unlock()
	}
	if n.healthySince.IsZero() {
		n.healthySince = now
		if n.cluster != nil {
			n.settleUntil = now.Add(n.cfg.Cluster.FailoverAfter)
		}
	}
	n.lastRound = now
	if now.Before(n.settleUntil) {
		// Settling: after a start or a wake-up this server's view of who
		// records what may be stale (peers adopted its cameras while it
		// was away). It claims nothing and changes nothing until fresh
		// records have had time to arrive, so that a stale claim never
		// wins cameras back from a buddy before failback_after.
		if n.cluster != nil {
			body := n.selfRecord(now, nil, sortedKeys(n.state.recording))
			if err := n.cluster.SetRecord(buddy.Record{Body: mustJSON(body)}); err != nil {
				n.log.Warn("publish record", "err", err)
			}
		}
		return
	}
	prev := n.state
	st := prev
	st.records = map[string]recordBody{}
	st.alive = map[string]bool{self: true}

	if n.cluster != nil {
		view := n.cluster.View()
		st.members = view.Members
		for _, m := range view.Members {
			if m.State == "alive" || m.State == "suspect" {
				st.alive[m.Name] = true
			}
		}
		st.stale = map[string]uint64{}
		for name, rec := range view.Records {
			if name == self || len(rec.Body) == 0 {
				continue
			}
			body, err := n.decodePeerRecord(name, rec)
			if err != nil {
				continue
			}
			// A server seen coming back from the dead still has the record
			// it had before it died: its claims and stability are from
			// then. Until it publishes a newer one, it claims nothing and
			// is not stable, so a stale claim cannot pull cameras back.
			if v, ok := prev.stale[name]; ok && v == rec.Version && st.alive[name] {
				st.stale[name] = v
			} else if _, known := prev.records[name]; known && st.alive[name] && !prev.alive[name] {
				st.stale[name] = rec.Version
			}
			if _, ok := st.stale[name]; ok {
				body.Claims, body.Recording, body.Stable = nil, nil, false
			}
			st.records[name] = body
		}
	}
	st.records[self] = n.selfRecord(now, sortedKeys(prev.assigned), sortedKeys(prev.recording))

	var in failover.Input
	for _, name := range sortedKeys(st.records) {
		in.Servers = append(in.Servers, st.records[name].plannerServer(st.alive[name]))
	}
	st.plan = failover.Compute(in)

	st.assigned = map[string]bool{}
	for _, id := range st.plan.For(self) {
		st.assigned[id] = true
	}

	// Make before break: keep a camera that leaves us until its new owner
	// records it.
	st.releasing = map[string]time.Time{}
	for id := range prev.recording {
		if st.assigned[id] {
			continue
		}
		owner := st.plan.Owner[id]
		if owner == "" || !st.alive[owner] {
			continue
		}
		if contains(st.records[owner].Recording, id) {
			continue
		}
		deadline, ok := prev.releasing[id]
		if !ok {
			deadline = now.Add(handoffTimeout)
		}
		if now.Before(deadline) {
			st.releasing[id] = deadline
		}
	}

	cams, missing := n.pipelineCameras(st)
	n.rec.Set(cams)
	st.recording = map[string]bool{}
	for _, c := range cams {
		st.recording[c.ID] = true
	}

	n.mu.Lock()
	n.state = st
	n.mu.Unlock()

	if n.cluster != nil {
		body := n.selfRecord(now, sortedKeys(st.assigned), sortedKeys(st.recording))
		if err := n.cluster.SetRecord(buddy.Record{Body: mustJSON(body)}); err != nil {
			n.log.Warn("publish record", "err", err)
		}
		meta := buddy.Meta{Role: "recorder", Load: len(st.recording), Capacity: n.cfg.Capacity.Cameras,
			CapacityMbps: n.cfg.Capacity.BitrateMbps, HTTP: n.cfg.Listen.HTTP, RTSP: n.cfg.Listen.RTSP, ConfigHash: body.ConfigHash}
		if meta != n.lastMeta {
			if err := n.cluster.SetMeta(meta); err != nil {
				n.log.Warn("publish heartbeat metadata", "err", err)
			} else {
				n.lastMeta = meta
			}
		}
	}
	n.raiseEvents(prev, st, missing, now)
}

// pipelineCameras lists the recorder's cameras: assigned plus releasing,
// with URLs from our config or from the secrets the home replicated to us.
// missing lists adopted cameras we cannot reach for want of credentials.
func (n *Node) pipelineCameras(st controlState) ([]recorder.Camera, []string) {
	self := n.cfg.Name
	own := map[string]recorder.Camera{}
	for _, c := range n.cfg.Cameras {
		id := c.ID(self)
		own[id] = recorder.Camera{ID: id, Home: self, URL: c.URL, Transport: c.Transport}
	}
	secrets := map[string]map[string]secretCamera{}
	var out []recorder.Camera
	var missing []string
	want := sortedKeys(st.assigned)
	want = append(want, sortedKeys(mapBool(st.releasing))...)
	for _, id := range want {
		home := homeOf(id)
		if home == self {
			if c, ok := own[id]; ok {
				out = append(out, c)
			}
			continue
		}
		if _, ok := secrets[home]; !ok {
			secrets[home] = n.homeSecrets(home)
		}
		sc, ok := secrets[home][nameOf(id)]
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, recorder.Camera{ID: id, Home: home, URL: sc.URL, Transport: sc.Transport})
	}
	return out, missing
}

func (n *Node) homeSecrets(home string) map[string]secretCamera {
	out := map[string]secretCamera{}
	if n.cluster == nil {
		return out
	}
	raw, ok := n.cluster.Secrets(home)
	if !ok {
		return out
	}
	var s secretBody
	if err := json.Unmarshal(raw, &s); err != nil {
		n.log.Warn("inventory secrets from a buddy do not decode", "home", home, "err", err)
		return out
	}
	for _, c := range s.Cameras {
		out[c.Name] = c
	}
	return out
}

// raiseEvents compares two rounds and records what a technician and the
// PSIM must learn. Every event about the site is raised by exactly one
// server: the one the rule below names, computed from the shared view.
func (n *Node) raiseEvents(prev, st controlState, missing []string, now time.Time) {
	self := n.cfg.Name

	// Servers that went down: announced by the first alive buddy of the
	// failed server, else the lowest-named alive server.
	for name := range prev.alive {
		if st.alive[name] || name == self {
			continue
		}
		if n.announcer(st, name) == self {
			n.event("server.down", "alarm", nil, fmt.Sprintf("server %s is down (no heartbeat for %s)", name, n.cfg.Cluster.FailoverAfter))
			n.notify(webhook.Notice{Type: "server.down", FailedServer: name, Text: fmt.Sprintf("server %s is down", name)})
		}
	}
	for name := range st.alive {
		if name != self && !prev.alive[name] && prev.records != nil && len(prev.records) > 0 {
			if _, known := prev.records[name]; known && n.announcer(st, name) == self {
				n.event("server.up", "info", nil, fmt.Sprintf("server %s is back", name))
			}
		}
	}

	// Adoptions: cameras of another home newly assigned to me.
	newly := map[string][]string{}
	for id := range st.assigned {
		if home := homeOf(id); home != self && !prev.assigned[id] {
			newly[home] = append(newly[home], id)
		}
	}
	for _, home := range sortedKeys(newly) {
		ids := newly[home]
		sort.Strings(ids)
		n.event("failover.started", "warning", ids, fmt.Sprintf("adopting %d camera(s) of %s", len(ids), home))
		n.metrics.Failover(home)
		if t, ok := st.pending[home]; ok {
			t.cameras = append(t.cameras, ids...)
		} else {
			st.pending[home] = &takeover{home: home, cameras: ids, started: now}
		}
	}

	// Failback: my own cameras that another alive server recorded last round.
	var back []string
	for id := range st.assigned {
		if homeOf(id) == self && !prev.assigned[id] {
			if owner := prev.plan.Owner[id]; owner != "" && owner != self && prev.alive[owner] {
				back = append(back, id)
			}
		}
	}
	if len(back) > 0 {
		sort.Strings(back)
		if t, ok := st.pending[failbackKey]; ok {
			t.cameras = append(t.cameras, back...)
		} else {
			st.pending[failbackKey] = &takeover{cameras: back, started: now}
		}
	}
	n.reportTakeovers(st, now)

	// Cameras nobody can record: raised by the lowest-named alive server.
	unplaced := map[string]string{}
	for _, u := range st.plan.Unplaced {
		unplaced[u.Camera] = u.Reason
	}
	if lowestAlive(st.alive) == self {
		var fresh []string
		for id, reason := range unplaced {
			if prev.unplaced[id] != reason {
				fresh = append(fresh, id)
			}
		}
		if len(fresh) > 0 {
			sort.Strings(fresh)
			reason := unplaced[fresh[0]]
			n.event("capacity.exceeded", "alarm", fresh, fmt.Sprintf("%d camera(s) cannot be recorded by any server (%s)", len(fresh), reason))
			n.notify(webhook.Notice{Type: "capacity.exceeded", Text: fmt.Sprintf("%d camera(s) unrecorded: %s", len(fresh), strings.Join(fresh, ", "))})
		}
	}
	n.mu.Lock()
	n.state.unplaced = unplaced
	n.mu.Unlock()
	if lowestAlive(st.alive) == self {
		n.checkConfigs(prev, st)
	}
	// Credentials arrive from the home by gossip; a short wait for them is
	// normal, a lasting one is an alarm.
	key := strings.Join(missing, ",")
	if key != n.missing {
		n.missing, n.missingSince, n.missingReported = key, now, false
	}
	if key != "" && !n.missingReported && now.Sub(n.missingSince) > 5*time.Second {
		n.missingReported = true
		n.log.Warn("cannot record adopted cameras: their home has not replicated their credentials to this server (is it in the home's failover.buddies?)", "cameras", missing)
		n.event("failover.no_credentials", "alarm", missing, "adopted cameras have no credentials on this server: the home server must list it in [failover] buddies")
	}

	// Camera state transitions.
	statuses := n.rec.Status()
	cur := map[string]string{}
	for _, s := range statuses {
		cur[s.ID] = s.State
		was := prev.cameras[s.ID]
		switch {
		case s.State == "offline" && was != "offline":
			typ := "camera.offline"
			switch {
			case strings.Contains(s.Error, "authentication failed"):
				typ = "camera.auth_failed"
			case strings.Contains(s.Error, "stalled") || strings.Contains(s.Error, "timeout"):
				typ = "recording.stalled"
			}
			n.event(typ, "alarm", []string{s.ID}, fmt.Sprintf("camera %s is offline: %s", s.ID, s.Error))
			n.notify(webhook.Notice{Type: typ, Cameras: []webhook.Camera{{ID: s.ID}}, Text: s.Error})
		case s.State == "recording" && was == "offline":
			n.event("camera.online", "info", []string{s.ID}, fmt.Sprintf("camera %s is recording again", s.ID))
		}
	}
	n.mu.Lock()
	n.state.cameras = cur
	n.mu.Unlock()
}

// reportTakeovers sends failover.completed once every adopted camera of a
// home records, or adoptionReport has passed; failback.completed likewise
// once the cameras that came home record here.
func (n *Node) reportTakeovers(st controlState, now time.Time) {
	if len(st.pending) == 0 {
		return
	}
	states := map[string]string{}
	for _, s := range n.rec.Status() {
		states[s.ID] = s.State
	}
	for home, t := range st.pending {
		var recording []string
		for _, id := range t.cameras {
			if states[id] == "recording" {
				recording = append(recording, id)
			}
		}
		if len(recording) < len(t.cameras) && now.Sub(t.started) < adoptionReport {
			continue
		}
		delete(st.pending, home)
		sort.Strings(recording)
		if home == failbackKey {
			n.event("failback.completed", "info", t.cameras, fmt.Sprintf("%d of %d camera(s) back on %s, recording %.2fs after the plan returned them",
				len(recording), len(t.cameras), n.cfg.Name, now.Sub(t.started).Seconds()))
			n.metrics.Failback(n.cfg.Name)
			n.notify(n.takeoverNotice("failback.completed", "", t.cameras))
			continue
		}
		n.event("failover.completed", "warning", t.cameras, fmt.Sprintf("%s now records %d of %d adopted camera(s) of %s %.2fs after planning the takeover",
			n.cfg.Name, len(recording), len(t.cameras), home, now.Sub(t.started).Seconds()))
		n.notify(n.takeoverNotice("failover.completed", home, t.cameras))
	}
}

// takeoverNotice names the address that now serves the cameras.
func (n *Node) takeoverNotice(typ, failed string, ids []string) webhook.Notice {
	host, _, _ := net.SplitHostPort(n.cfg.Listen.HTTP)
	nt := webhook.Notice{
		Type:         typ,
		FailedServer: failed,
		Address:      &webhook.Address{IP: host, HTTP: n.peerScheme() + "://" + n.cfg.Listen.HTTP},
	}
	if n.cfg.Listen.RTSP != "" {
		nt.Address.RTSP = "rtsp://" + n.cfg.Listen.RTSP
	}
	for _, id := range ids {
		c := webhook.Camera{ID: id}
		if n.cfg.Listen.RTSP != "" {
			c.LiveURL = "rtsp://" + n.cfg.Listen.RTSP + "/" + id
		}
		nt.Cameras = append(nt.Cameras, c)
	}
	if failed != "" {
		for _, a := range n.aspectsHeld(failed) {
			nt.Aspects = append(nt.Aspects, webhook.Aspect{Kind: a.Kind, Name: a.Name})
		}
	}
	return nt
}

// aspectsHeld lists the aspects of a failed home that this server holds:
// aspects follow the home's first alive buddy.
func (n *Node) aspectsHeld(home string) []aspectRef {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	rec, ok := st.records[home]
	if !ok || st.alive[home] {
		return nil
	}
	for _, b := range rec.Buddies {
		if st.alive[b] {
			if b == n.cfg.Name {
				return rec.Aspects
			}
			return nil
		}
	}
	return nil
}

// announcer picks the one server that reports the failure of name.
func (n *Node) announcer(st controlState, name string) string {
	if rec, ok := st.records[name]; ok {
		for _, b := range rec.Buddies {
			if st.alive[b] {
				return b
			}
		}
	}
	return lowestAlive(st.alive)
}

func lowestAlive(alive map[string]bool) string {
	best := ""
	for name, ok := range alive {
		if ok && (best == "" || name < best) {
			best = name
		}
	}
	return best
}

// event records to the event log; it never blocks recording (the log is a
// local bbolt write) and never fails the caller.
func (n *Node) event(typ, severity string, cameras []string, text string) {
	if _, err := n.events.Append(eventOf(n.cfg.Name, typ, severity, cameras, text)); err != nil {
		n.log.Error("append event", "type", typ, "err", err)
	}
	n.log.Info("event", "type", typ, "severity", severity, "text", text)
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

func (n *Node) storageAlarm(a storage.Alarm) {
	typ := "storage." + a.Kind
	switch a.Kind {
	case "disk_full":
		typ = "disk.full"
	case "disk_low":
		typ = "disk.low"
	}
	var cams []string
	if a.Camera != "" {
		cams = []string{a.Camera}
	}
	n.event(typ, "alarm", cams, fmt.Sprintf("storage: %s %s", a.Kind, a.Err))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mapBool(m map[string]time.Time) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only plain structs are marshalled here
	}
	return b
}

// checkConfigs raises config.mismatch when servers disagree on what must be
// the same site-wide (failover timing) or name buddies nobody knows. The
// lowest-named alive server reports it, once per distinct finding.
func (n *Node) checkConfigs(prev, st controlState) {
	var findings []string
	mine := st.records[n.cfg.Name].Timing
	for _, name := range sortedKeys(st.records) {
		r := st.records[name]
		if !st.alive[name] {
			continue
		}
		if r.Timing != "" && r.Timing != mine {
			findings = append(findings, fmt.Sprintf("%s uses keepalive/failover_after %s, %s uses %s", name, r.Timing, n.cfg.Name, mine))
		}
		for _, b := range r.Buddies {
			if _, ok := st.records[b]; !ok {
				findings = append(findings, fmt.Sprintf("%s names buddy %q, which no server of the site is called", name, b))
			}
		}
	}
	key := strings.Join(findings, "; ")
	n.mu.Lock()
	seen := n.configFindings
	n.configFindings = key
	n.mu.Unlock()
	if key != "" && key != seen {
		n.event("config.mismatch", "warning", nil, key)
	}
}
