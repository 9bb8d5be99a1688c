package node

import (
	"net/http"
	"sort"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/failover"
	"github.com/buddyrec/buddyrec/internal/httpserver"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/view"
	"github.com/buddyrec/buddyrec/web"
)

// Handler serves the JSON API under /api/v1/.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cameras", n.serveCameras)
	mux.HandleFunc("GET /api/v1/cluster", n.serveCluster)
	mux.HandleFunc("POST /api/v1/cluster/forget", n.serveForget)
	mux.HandleFunc("GET /api/v1/plan", n.servePlan)
	mux.HandleFunc("GET /api/v1/backfill", n.serveBackfill)
	// Operations a browser could be tricked into: refused cross-origin.
	csrf := http.NewCrossOriginProtection()
	mux.Handle("POST /api/v1/drain", csrf.Handler(n.serveDrain(true)))
	mux.Handle("POST /api/v1/undrain", csrf.Handler(n.serveDrain(false)))
	mux.HandleFunc("GET /api/v1/drain", n.serveMaintenance)
	mux.Handle("POST /api/v1/restart", csrf.Handler(http.HandlerFunc(n.serveRestart)))
	mux.Handle("POST /api/v1/reload", csrf.Handler(http.HandlerFunc(n.serveReload)))
	exp := export.NewHandler(export.Options{
		Store:      n.store,
		Self:       n.cfg.Name,
		Peers:      n.peers,
		PeerHeader: n.peerHeader,
		Client:     n.peerClient,
		Logger:     n.log.With("part", "export"),
	})
	// Exports and the segment files peers fetch for them stream as long
	// as the range takes: no server-wide read/write deadline.
	long := httpserver.LongResponse(exp)
	mux.Handle(export.RouteExport, long)
	mux.Handle(export.RoutePlan, exp)
	mux.Handle(export.RouteSegments, exp)
	mux.Handle(export.RouteFile, long)
	ev := n.events.Handler(events.HandlerOptions{AckedBy: func(r *http.Request, claimed string) string {
		return web.AckedBy(r.Context(), claimed)
	}})
	// Recordings answer for the site from the sources an export reads.
	mux.HandleFunc("GET /api/v1/recordings", func(w http.ResponseWriter, r *http.Request) { n.serveRecordings(w, r, exp) })
	mux.Handle("/api/v1/events", ev)
	mux.Handle("/api/v1/events/", ev)
	mux.Handle("GET /metrics", n.metrics.Handler())
	// A relayed live stream lasts as long as someone watches. (The
	// browser view's WebSocket is hijacked, which clears the deadlines.)
	mux.Handle(relay.Route, httpserver.LongResponse(relay.Handler(n.rec, n.isRecording, n.log.With("part", "relay"))))
	if n.view != nil {
		vh := n.view.Handler()
		mux.Handle(view.RoutePage, vh)
		mux.Handle(view.RouteSocket, vh)
		mux.Handle(view.RouteAssets, vh)
	}
	mux.Handle("/", web.NewHandler(web.Options{Source: n, Auth: n.auth, Client: n.peerClient, PeerScheme: n.peerScheme(), Logger: n.log.With("part", "web")}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return n.auth.Wrap(mux)
}

func (n *Node) peerScheme() string {
	if n.cfg.HTTP.CertFile != "" {
		return "https"
	}
	return "http"
}

func (n *Node) serveCameras(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Cameras())
}

// Cameras is what this server records now, own and adopted, and the
// aspects it holds.
func (n *Node) Cameras() api.Cameras {
	self := n.cfg.Name
	n.mu.Lock()
	cv := n.seen
	n.mu.Unlock()
	records := cv.records
	critical := map[string]bool{}
	for home, r := range records {
		for _, c := range r.Cameras {
			critical[camera.New(home, c.Name).String()] = c.Critical
		}
	}
	cams := []api.CameraInfo{}
	statuses := n.rec.Status()
	for _, s := range statuses {
		if s.Standby != recorder.StandbyNone {
			continue // a standby session: in Standby below
		}
		ci := api.CameraInfo{
			ID: s.ID, Home: s.Home, RecordedBy: self, State: s.State, Since: s.Since.UTC(), Reason: string(s.Reason), Error: s.Error,
			Critical: critical[s.ID], Codec: s.Codec, BitrateBps: s.Bitrate, LastKeyframe: s.LastKeyframe,
			FramesReceived: s.FramesReceived, FramesDropped: s.FramesDropped, BytesReceived: s.BytesReceived,
			Reconnects: s.Reconnects, NextAttempt: s.NextAttempt,
		}
		ci.LiveURL = n.liveURL(s.ID)
		cams = append(cams, ci)
	}
	aspects := []api.AspectInfo{}
	for _, a := range n.config().Aspects {
		aspects = append(aspects, api.AspectInfo{Kind: a.Kind, Name: a.Name, Home: self, HeldBy: self})
	}
	for _, home := range sortedKeys(records) {
		if home == self {
			continue
		}
		for _, a := range cv.ctl.AspectsHeld(self, home) {
			aspects = append(aspects, api.AspectInfo{Kind: a.Kind, Name: a.Name, Home: home, HeldBy: self})
		}
	}
	load := n.currentLoad()
	return api.Cameras{Server: self, Cameras: cams, Aspects: aspects, Load: &load, Footage: n.footage(),
		Standby: standbyInfo(self, statuses, critical), Backfill: n.backfill.Status().Cameras}
}

// serveRecordings answers GET /api/v1/recordings for the whole site: the
// spans this server and every alive peer hold of the camera (the segments
// an export would read), the gaps none holds, and where the rest is — a
// dead home's archive, a peer that did not answer.
func (n *Node) serveRecordings(w http.ResponseWriter, r *http.Request, exp *export.Handler) {
	q := r.URL.Query()
	cam := q.Get("camera")
	if _, err := camera.Parse(cam); err != nil {
		writeError(w, http.StatusBadRequest, "camera: required, as home/name (e.g. rec-a/lobby)")
		return
	}
	from, to, err := api.ParseRange(q, time.Now(), 24*time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if to.Sub(from) > web.MaxTimelineRange {
		// every live server lists its segments of the range
		writeError(w, http.StatusBadRequest, "from: range longer than 31 days; ask in parts")
		return
	}
	held, failed, err := exp.Footage(r.Context(), cam, from, to)
	if err != nil {
		n.log.Error("recordings: read index", "camera", cam, "err", err)
		writeError(w, http.StatusInternalServerError, "read index failed")
		return
	}
	spans, gaps := export.Spans(held, from, to)
	out := api.Recordings{Camera: cam, From: from.UTC(), To: to.UTC(), Spans: spans, Gaps: gaps,
		Unreachable: n.Unreachable()[cam]}
	for _, f := range failed {
		out.Unreachable = append(out.Unreachable, api.Unreachable{Server: f.Server, Reason: "no answer: " + f.Err})
	}
	writeJSON(w, http.StatusOK, out)
}

// Unreachable lists, per camera id, the servers holding footage of it that
// no live server can give: each dead server's own cameras (known from its
// record) have their archive there, recorded before it went down. What
// live servers hold of them (adopted footage, mirror copies) is in their
// timelines and recordings.
func (n *Node) Unreachable() map[string][]api.Unreachable {
	n.mu.Lock()
	defer n.mu.Unlock()
	cv := &n.seen
	since := map[string]time.Time{}
	for _, m := range cv.members {
		since[m.Name] = m.Since
	}
	out := map[string][]api.Unreachable{}
	for _, home := range sortedKeys(cv.records) {
		if home == n.cfg.Name || cv.ctl.Alive[home] {
			continue
		}
		u := api.Unreachable{Server: home, Reason: "server down"}
		if t := since[home]; !t.IsZero() {
			t = t.UTC()
			u.Before = &t
		}
		for _, c := range cv.records[home].Cameras {
			id := camera.New(home, c.Name).String()
			out[id] = append(out[id], u)
		}
	}
	return out
}

func (n *Node) serveCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Cluster{Self: n.cfg.Name, Servers: n.ClusterView()})
}

// ClusterView is the site as this server sees it, sorted by name.
func (n *Node) ClusterView() []api.ServerInfo {
	n.mu.Lock()
	cv := n.seen
	n.mu.Unlock()
	st := cv.ctl
	self := n.cfg.Name
	states := map[string]buddy.State{self: buddy.StateAlive}
	addrs := map[string]string{}
	for _, m := range cv.members {
		if m.Name != self {
			states[m.Name] = m.State
		}
		addrs[m.Name] = m.Addr
	}
	unplaced := make(map[string]string, len(st.Plan.Unplaced))
	for _, u := range st.Plan.Unplaced {
		unplaced[u.Camera] = u.Reason
	}
	var out []api.ServerInfo
	for _, name := range sortedKeys(cv.records) {
		rec := cv.records[name]
		state := states[name]
		if state == "" {
			state = buddy.StateDead
		}
		addr := addrs[name]
		if addr == "" {
			addr = rec.Gossip
		}
		si := api.ServerInfo{Name: name, State: state, Address: addr, HTTP: rec.HTTP, RTSP: rec.RTSP,
			Cameras: len(st.Plan.For(name)), Capacity: rec.Capacity, AdoptedFrom: []string{},
			Stable: st.Records[name].Stable, ConfigHash: rec.ConfigHash, Load: rec.Load, Maintenance: rec.Maintenance && state.Up()}
		if !state.Up() {
			si.Cameras = 0
		}
		if name == self {
			// Peers see the load as last published (every loadEvery); this
			// server's own can be current.
			si.Load = n.currentLoad()
		}
		for home := range st.Plan.AdoptedBy(name) {
			si.AdoptedFrom = append(si.AdoptedFrom, home)
		}
		sort.Strings(si.AdoptedFrom)
		si.Inventory = inventory(name, rec, st.Plan, unplaced)
		out = append(out, si)
	}
	return out
}

// inventory lists a server's own cameras with where the plan puts them.
// The plan's reasons are the api.Unrecorded* values.
func inventory(home string, rec recordBody, plan failover.Plan, unplaced map[string]string) []api.HomeCamera {
	out := make([]api.HomeCamera, 0, len(rec.Cameras))
	for _, c := range rec.Cameras {
		id := camera.New(home, c.Name).String()
		out = append(out, api.HomeCamera{ID: id, Critical: c.Critical, PlannedOn: plan.Owner[id], Unrecorded: unplaced[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// peers lists the other alive servers' HTTP addresses, for requests that
// gather site-wide data (exports spanning a failover, the status page).
func (n *Node) peers() []export.Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []export.Peer
	for _, name := range sortedKeys(n.seen.records) {
		if name != n.cfg.Name && n.seen.ctl.Alive[name] && n.seen.records[name].HTTP != "" {
			out = append(out, export.Peer{Name: name, HTTP: n.peerScheme() + "://" + n.seen.records[name].HTTP})
		}
	}
	return out
}

// writeJSON and writeError write an API answer: api.WriteJSON and
// api.WriteError under this package's names.
var (
	writeJSON  = api.WriteJSON
	writeError = api.WriteError
)
