// Package web serves buddyrec's status page, the bulk timeline endpoint the
// page uses to see the whole site, and the access control that guards the
// page, the JSON API and /metrics.
//
// Any server shows the whole site: what it does not record itself it asks
// its alive peers for (their /api/v1/cameras and /api/v1/timeline), in
// parallel and with a short timeout, so one unreachable peer shows as
// "unknown" instead of stalling the page.
//
// The page works without JavaScript: each camera links to its view
// (/view?camera=ID), the timeline ranges are links (?range=1h|24h|7d) that
// the page's refresh keeps, and a span links to the view at its start. Its
// one script, /static/page.js, adds what needs the pointer: a click on a
// timeline opens the view at the time under it (see timeline.go for the
// axis it reads).
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/events"
)

// Source is what the page needs from the running server. The node
// implements it; every method must be safe for concurrent use and quick
// (the page calls them on each refresh).
type Source interface {
	// Self is this server's name.
	Self() string
	// Cluster is the whole site as this server sees it.
	Cluster() []api.ServerInfo
	// Cameras is what this server records now, with the aspects it holds.
	Cameras() api.Cameras
	// Timeline returns the recorded spans of every camera in the local
	// index overlapping [from, to), keyed by camera id ("home/name").
	Timeline(from, to time.Time) (map[string][]api.Span, error)
	// Events returns up to limit events, newest first.
	Events(limit int) ([]events.Event, error)
	// Ack acknowledges event id on behalf of by; events.ErrNotFound for an
	// unknown id.
	Ack(id, by string) error
}

// Timeline is the body of GET /api/v1/timeline: spans of every camera this
// server holds footage of, so that a peer's page needs one call per server
// instead of one per camera.
type Timeline struct {
	Server  string                `json:"server"`
	From    time.Time             `json:"from"`
	To      time.Time             `json:"to"`
	Cameras map[string][]api.Span `json:"cameras"`
	// Unreachable names, per camera, the servers holding footage no live
	// server can give (a dead home's own archive), when the source knows.
	Unreachable map[string][]api.Unreachable `json:"unreachable,omitempty"`
}

// ArchiveSource is implemented by a Source that knows where footage is
// that no live server can give: a dead server's cameras' own archive. The
// page then says, beside what live servers hold, "before 08:25:40 on
// rec-a, unreachable".
type ArchiveSource interface {
	Unreachable() map[string][]api.Unreachable
}

// MaxTimelineRange bounds one /api/v1/timeline request so a careless query
// cannot make a server walk its whole index.
const MaxTimelineRange = 31 * 24 * time.Hour

// Options configure the handler.
type Options struct {
	Source Source
	// Auth supplies the header for calls to peers; nil means peers are
	// called without credentials.
	Auth *Auth
	// Client calls peers; nil means a plain client. Its own timeout, if
	// any, applies on top of PeerTimeout.
	Client *http.Client
	// PeerScheme is "http" (default) or "https" when the site serves TLS.
	PeerScheme string
	// PeerTimeout bounds each peer call; 0 means 1 s.
	PeerTimeout time.Duration
	// Window is how much history the page's timelines show when the
	// request names no range (see Zooms); 0 means 24 h.
	Window time.Duration
	// EventLimit is how many events the page lists; 0 means 50.
	EventLimit int
	// Logger receives peer and source failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

//go:embed static templates
var assets embed.FS

type handler struct {
	o   Options
	log *slog.Logger
	now func() time.Time
}

// NewHandler serves:
//
//	GET  /                  the status page; ?range=1h|24h|7d zooms its timelines
//	POST /ack               acknowledge an event (form fields id, server, range), then back to /
//	POST /drain, /undrain   put this server in maintenance or take it out (Operator)
//	POST /restart           drain, then restart this server's process (Operator)
//	GET  /api/v1/timeline   ?from=RFC3339&to=RFC3339 (default: last 24 h) → Timeline
//	                        &scope=site: merged with every alive peer's
//	GET  /static/...        embedded stylesheet and script
//
// Mount it at "/" on the server's mux, inside Auth.Wrap.
func NewHandler(o Options) http.Handler {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.PeerScheme == "" {
		o.PeerScheme = "http"
	}
	if o.PeerTimeout <= 0 {
		o.PeerTimeout = time.Second
	}
	if o.Window <= 0 {
		o.Window = 24 * time.Hour
	}
	if o.EventLimit <= 0 {
		o.EventLimit = 50
	}
	h := &handler{o: o, log: o.Logger, now: o.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // embedded at build time; cannot happen
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.servePage)
	mux.Handle("POST /ack", http.NewCrossOriginProtection().Handler(http.HandlerFunc(h.serveAck)))
	for _, op := range []string{"drain", "undrain", "restart"} {
		mux.Handle("POST /"+op, http.NewCrossOriginProtection().Handler(h.serveOp(op)))
	}
	mux.HandleFunc("GET /api/v1/timeline", h.serveTimeline)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	return mux
}

func (h *handler) serveTimeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := api.ParseRange(q, h.now(), 24*time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if to.Sub(from) > MaxTimelineRange {
		writeError(w, http.StatusBadRequest, "from: range longer than 31 days; ask /api/v1/recordings per camera")
		return
	}
	spans, err := h.o.Source.Timeline(from, to)
	if err != nil {
		h.log.Error("timeline", "err", err)
		writeError(w, http.StatusInternalServerError, "read index failed")
		return
	}
	if spans == nil {
		spans = map[string][]api.Span{}
	}
	tl := Timeline{Server: h.o.Source.Self(), From: from.UTC(), To: to.UTC(), Cameras: spans}
	if as, ok := h.o.Source.(ArchiveSource); ok {
		tl.Unreachable = as.Unreachable()
	}
	switch q.Get("scope") {
	case "", "local":
	case "site":
		for id, ss := range tl.Cameras {
			for i := range ss {
				if len(ss[i].HeldBy) == 0 {
					ss[i].HeldBy = []string{tl.Server}
				}
			}
			tl.Cameras[id] = ss
		}
		h.siteTimeline(r.Context(), &tl)
	default:
		writeError(w, http.StatusBadRequest, "scope: local (default) or site")
		return
	}
	writeJSON(w, http.StatusOK, tl)
}

func (h *handler) serveAck(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	if id == "" {
		http.Error(w, "id: required", http.StatusBadRequest)
		return
	}
	by := Identity(r.Context())
	if by == "" {
		by = IdentityOpen
	}
	err := h.ack(r.Context(), r.PostFormValue("server"), id, by)
	if err != nil {
		if errors.Is(err, events.ErrNotFound) {
			http.Error(w, "event not found (pruned or never existed)", http.StatusNotFound)
			return
		}
		h.log.Error("ack event", "id", id, "err", err)
		http.Error(w, "acknowledge failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	// back to the page as it was: same timeline range
	back := "/#events"
	if rng := r.PostFormValue("range"); rng != "" {
		if z, err := zoomOf(rng, h.o.Window); err == nil {
			back = "/?range=" + z.Name + "#events"
		}
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// ack acknowledges an event in the log of the server that raised it.
func (h *handler) ack(ctx context.Context, server, id, by string) error {
	src := h.o.Source
	if server == "" || server == src.Self() {
		return src.Ack(id, by)
	}
	for _, s := range src.Cluster() {
		if s.Name == server {
			if s.HTTP == "" || !s.State.Up() {
				return fmt.Errorf("server %s is not reachable now", server)
			}
			if err := h.ackOnPeer(ctx, s.HTTP, id, by); err != nil {
				if errors.Is(err, events.ErrNotFound) {
					return err
				}
				return fmt.Errorf("server %s: %w", server, err)
			}
			return nil
		}
	}
	return fmt.Errorf("no server %s in the site", server)
}

// writeJSON and writeError write an API answer: api.WriteJSON and
// api.WriteError under this package's names.
var (
	writeJSON  = api.WriteJSON
	writeError = api.WriteError
)
