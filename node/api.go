package node

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/view"
	"github.com/buddyrec/buddyrec/web"
)

// Handler serves the JSON API under /api/v1/.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cameras", n.serveCameras)
	mux.HandleFunc("GET /api/v1/recordings", n.serveRecordings)
	mux.HandleFunc("GET /api/v1/cluster", n.serveCluster)
	exp := export.NewHandler(export.Options{
		Store:      n.store,
		Self:       n.cfg.Name,
		Peers:      n.peers,
		PeerHeader: n.peerHeader,
		Client:     n.peerClient,
		Logger:     n.log.With("part", "export"),
	})
	mux.Handle(export.RouteExport, exp)
	mux.Handle(export.RoutePlan, exp)
	mux.Handle(export.RouteSegments, exp)
	mux.Handle(export.RouteFile, exp)
	ev := n.events.Handler()
	mux.Handle("/api/v1/events", ev)
	mux.Handle("/api/v1/events/", ev)
	mux.Handle("GET /metrics", n.metrics.Handler())
	mux.Handle(relay.Route, relay.Handler(n.rec, n.isRecording, n.log.With("part", "relay")))
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
	records := n.state.records
	n.mu.Unlock()
	critical := map[string]bool{}
	for home, r := range records {
		for _, c := range r.Cameras {
			critical[home+"/"+c.Name] = c.Critical
		}
	}
	cams := []api.CameraInfo{}
	for _, s := range n.rec.Status() {
		ci := api.CameraInfo{
			ID: s.ID, Home: s.Home, RecordedBy: self, State: s.State, Since: s.Since.UTC(), Reason: string(s.Reason), Error: s.Error,
			Critical: critical[s.ID], Codec: s.Codec, BitrateBps: s.Bitrate, LastKeyframe: s.LastKeyframe,
			FramesReceived: s.FramesReceived, FramesDropped: s.FramesDropped, BytesReceived: s.BytesReceived,
			Reconnects: s.Reconnects,
		}
		if n.cfg.Listen.RTSP != "" {
			ci.LiveURL = "rtsp://" + n.cfg.Listen.RTSP + "/" + s.ID
		}
		cams = append(cams, ci)
	}
	aspects := []api.AspectInfo{}
	for _, a := range n.cfg.Aspects {
		aspects = append(aspects, api.AspectInfo{Kind: a.Kind, Name: a.Name, Home: self, HeldBy: self})
	}
	for _, home := range sortedKeys(records) {
		if home == self {
			continue
		}
		for _, a := range n.aspectsHeld(home) {
			aspects = append(aspects, api.AspectInfo{Kind: a.Kind, Name: a.Name, Home: home, HeldBy: self})
		}
	}
	return api.Cameras{Server: self, Cameras: cams, Aspects: aspects}
}

func (n *Node) serveRecordings(w http.ResponseWriter, r *http.Request) {
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
	spans, err := n.store.Spans(cam, from, to)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read index: "+err.Error())
		return
	}
	out := []api.Span{}
	for _, s := range spans {
		out = append(out, api.Span{Start: s.Start.UTC(), End: s.End.UTC(), RecordedBy: s.RecordedBy})
	}
	writeJSON(w, http.StatusOK, api.Recordings{Camera: cam, From: from.UTC(), To: to.UTC(), Spans: out})
}

func (n *Node) serveCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Cluster{Self: n.cfg.Name, Servers: n.ClusterView()})
}

// ClusterView is the site as this server sees it, sorted by name.
func (n *Node) ClusterView() []api.ServerInfo {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	self := n.cfg.Name
	states := map[string]buddy.State{self: buddy.StateAlive}
	addrs := map[string]string{}
	for _, m := range st.members {
		if m.Name != self {
			states[m.Name] = m.State
		}
		addrs[m.Name] = m.Addr
	}
	var out []api.ServerInfo
	for _, name := range sortedKeys(st.records) {
		rec := st.records[name]
		state := states[name]
		if state == "" {
			state = buddy.StateDead
		}
		addr := addrs[name]
		if addr == "" {
			addr = rec.Gossip
		}
		si := api.ServerInfo{Name: name, State: state, Address: addr, HTTP: rec.HTTP, RTSP: rec.RTSP,
			Cameras: len(st.plan.For(name)), Capacity: rec.Capacity, AdoptedFrom: []string{},
			Stable: rec.Stable, ConfigHash: rec.ConfigHash, Load: rec.Load}
		if !state.Up() {
			si.Cameras = 0
		}
		if name == self {
			// Peers see the load as last published (every loadEvery); this
			// server's own can be current.
			si.Load = n.measureLoad(time.Now())
		}
		for home := range st.plan.AdoptedBy(name) {
			si.AdoptedFrom = append(si.AdoptedFrom, home)
		}
		sort.Strings(si.AdoptedFrom)
		out = append(out, si)
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// peers lists the other alive servers' HTTP addresses, for requests that
// gather site-wide data (exports spanning a failover, the status page).
func (n *Node) peers() []export.Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []export.Peer
	for _, name := range sortedKeys(n.state.records) {
		if name != n.cfg.Name && n.state.alive[name] && n.state.records[name].HTTP != "" {
			out = append(out, export.Peer{Name: name, HTTP: n.peerScheme() + "://" + n.state.records[name].HTTP})
		}
	}
	return out
}
