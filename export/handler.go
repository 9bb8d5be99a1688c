// Package export serves recorded footage: one playable fragmented MP4 for
// any time range of a camera, stitched from the segment files of this
// server and of its peers (a buddy that recorded the camera during a
// failover), streamed fragment by fragment in constant memory. Reading
// footage never touches the recording path: it opens the files and the
// index read-only.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/storage"
)

// Peer is another server that may hold footage of a camera.
type Peer struct {
	Name string
	// HTTP is its API address, "host:port" or a base URL.
	HTTP string
}

// Options configures the handler.
type Options struct {
	// Store is this server's footage. Required.
	Store *storage.Store
	// Self is this server's name; a peer of that name is skipped.
	Self string
	// Peers lists the servers to ask for footage (every alive member);
	// nil means this server only.
	Peers func() []Peer
	// Client makes server-to-server requests; nil means a client with
	// connect and response-header timeouts but no overall timeout, since a
	// streamed segment may take a while.
	Client *http.Client
	// PeerHeader is added to every server-to-server request (e.g.
	// Authorization).
	PeerHeader http.Header
	// PeerTimeout bounds asking one peer for its segment list (default 5s).
	PeerTimeout time.Duration
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Routes served by the handler; mount each of them (or the prefixes
// /api/v1/export and /api/v1/segments) on the server's mux.
const (
	RouteExport   = "/api/v1/export"
	RoutePlan     = "/api/v1/export/plan"
	RouteSegments = "/api/v1/segments"
	RouteFile     = "/api/v1/segments/file"
)

// GapsHeader carries the JSON list of gaps of an export response.
const GapsHeader = "X-Buddyrec-Gaps"

// ErrorTrailer is set as an HTTP trailer when an export stopped early
// after the response had begun (a peer vanished mid-stream); the file
// received is playable but shorter.
const ErrorTrailer = "X-Buddyrec-Error"

type handler struct {
	o      Options
	log    *slog.Logger
	client *http.Client
	mux    *http.ServeMux
}

// NewHandler returns the handler of the export routes (see Route*).
func NewHandler(o Options) http.Handler {
	h := &handler{o: o, log: o.Logger, client: o.Client}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.o.PeerTimeout <= 0 {
		h.o.PeerTimeout = 5 * time.Second
	}
	if h.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 10 * time.Second
		h.client = &http.Client{Transport: tr}
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET "+RouteExport, h.serveExport)
	h.mux.HandleFunc("GET "+RoutePlan, h.servePlan)
	h.mux.HandleFunc("GET "+RouteSegments, h.serveSegments)
	h.mux.HandleFunc("GET "+RouteFile, h.serveFile)
	return h.mux
}

// rangeQuery is camera, from and to of a request.
type rangeQuery struct {
	camera   string
	from, to time.Time
}

func parseRange(r *http.Request) (rangeQuery, error) {
	q := r.URL.Query()
	var rq rangeQuery
	rq.camera = q.Get("camera")
	if _, err := camera.Parse(rq.camera); err != nil {
		return rq, errors.New("camera: required, as home/name (e.g. rec-a/lobby)")
	}
	var err error
	if rq.from, err = time.Parse(time.RFC3339Nano, q.Get("from")); err != nil {
		return rq, errors.New("from: required, an RFC3339 time")
	}
	if rq.to, err = time.Parse(time.RFC3339Nano, q.Get("to")); err != nil {
		return rq, errors.New("to: required, an RFC3339 time")
	}
	if !rq.to.After(rq.from) {
		return rq, errors.New("to: must be after from")
	}
	return rq, nil
}

// serveSegments lists this server's own segments of a camera.
func (h *handler) serveSegments(w http.ResponseWriter, r *http.Request) {
	rq, err := parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	segs, err := h.o.Store.Segments(rq.camera, rq.from, rq.to)
	if err != nil {
		h.log.Error("list segments", "camera", rq.camera, "err", err)
		writeError(w, http.StatusInternalServerError, "read index")
		return
	}
	if segs == nil {
		segs = []storage.Segment{}
	}
	writeJSON(w, http.StatusOK, segs)
}

// serveFile serves one segment file, with Range support.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	camera := q.Get("camera")
	ns, err := strconv.ParseInt(q.Get("start"), 10, 64)
	if camera == "" || err != nil {
		writeError(w, http.StatusBadRequest, "camera and start (unix nanoseconds) are required")
		return
	}
	start := time.Unix(0, ns)
	segs, err := h.o.Store.Segments(camera, start, start.Add(time.Nanosecond))
	if err != nil {
		h.log.Error("find segment", "camera", camera, "err", err)
		writeError(w, http.StatusInternalServerError, "read index")
		return
	}
	for _, seg := range segs {
		if seg.Start.UnixNano() != ns {
			continue
		}
		f, err := os.Open(h.o.Store.SegmentPath(seg))
		if err != nil {
			writeError(w, http.StatusNotFound, "segment file is gone")
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "stat segment")
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return
	}
	writeError(w, http.StatusNotFound, "no such segment")
}

// servePlan answers what an export of the range would contain.
func (h *handler) servePlan(w http.ResponseWriter, r *http.Request) {
	rq, err := parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, _, err := h.plan(r.Context(), rq)
	if err != nil {
		h.log.Error("plan export", "camera", rq.camera, "err", err)
		writeError(w, http.StatusInternalServerError, "plan export: read index")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// planned is a piece whose init segment was read.
type planned struct {
	piece
	init    *fmp4.Init
	dataOff int64 // offset of the first fragment
}

// plan resolves the pieces of an export: local and peer segments merged
// into one timeline, cut short where codec parameters change.
func (h *handler) plan(ctx context.Context, rq rangeQuery) (Plan, []planned, error) {
	out := Plan{Camera: rq.camera, From: rq.from.UTC(), To: rq.to.UTC(), Pieces: []Piece{}, Gaps: []Gap{}}
	local, err := h.o.Store.Segments(rq.camera, rq.from, rq.to)
	if err != nil {
		return out, nil, err
	}
	var cands []candidate
	for _, s := range local {
		cands = append(cands, candidate{seg: s})
	}
	remote, warnings := h.peerSegments(ctx, rq)
	cands = append(cands, remote...)
	out.Warnings = warnings

	pieces, gaps := mergeTimeline(cands, rq.from, rq.to)
	var res []planned
	for i, p := range pieces {
		init, off, err := h.readPieceInit(ctx, &p.candidate)
		if err == nil && len(res) > 0 && !sameTracks(res[0].init, init) {
			err = errParamsChanged
		}
		if err != nil {
			// stop here: what follows cannot go into this file
			reason := "unreadable segment"
			if errors.Is(err, errParamsChanged) {
				reason = "codec parameters changed (e.g. resolution); export the rest separately"
			}
			h.log.Warn("export stops early", "camera", rq.camera, "segment", p.seg.File, "server", serverName(h.o.Self, p.server), "err", err)
			start := p.from
			if i > 0 {
				start = maxTime(start, pieces[i-1].to)
			}
			var kept []Gap
			for _, g := range gaps {
				if g.End.After(start) {
					g.End = start
				}
				if g.End.After(g.Start) {
					kept = append(kept, g)
				}
			}
			gaps = append(kept, Gap{Start: start, End: rq.to, Reason: reason})
			break
		}
		res = append(res, planned{piece: p, init: init, dataOff: off})
	}
	for _, p := range res {
		out.Pieces = append(out.Pieces, Piece{
			Start: maxTime(p.from, p.seg.Start).UTC(), End: p.to.UTC(), Server: serverName(h.o.Self, p.server),
			RecordedBy: p.seg.RecordedBy, SegmentStart: p.seg.Start.UTC(),
		})
	}
	for _, g := range gaps {
		g.Start, g.End = g.Start.UTC(), g.End.UTC()
		out.Gaps = append(out.Gaps, g)
	}
	return out, res, nil
}

var errParamsChanged = errors.New("codec parameters differ from the first piece")

func serverName(self, server string) string {
	if server == "" {
		return self
	}
	return server
}

// peerSegments asks every peer, concurrently, for its segments of the
// range. A peer that fails is skipped with a warning; it never fails the
// export.
func (h *handler) peerSegments(ctx context.Context, rq rangeQuery) ([]candidate, []string) {
	if h.o.Peers == nil {
		return nil, nil
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		cands    []candidate
		warnings []string
	)
	for _, p := range h.o.Peers() {
		if p.Name == h.o.Self || p.Name == "" || p.HTTP == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			segs, err := h.fetchSegments(ctx, p, rq)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.log.Warn("ask peer for footage", "peer", p.Name, "camera", rq.camera, "err", err)
				warnings = append(warnings, fmt.Sprintf("peer %s: %v", p.Name, err))
				return
			}
			for _, s := range segs {
				if s.Camera == rq.camera && s.Bytes > 0 {
					cands = append(cands, candidate{seg: s, server: p.Name, peer: p})
				}
			}
		}()
	}
	wg.Wait()
	return cands, warnings
}

func (h *handler) fetchSegments(ctx context.Context, p Peer, rq rangeQuery) ([]storage.Segment, error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.PeerTimeout)
	defer cancel()
	q := url.Values{"camera": {rq.camera}, "from": {rq.from.Format(time.RFC3339Nano)}, "to": {rq.to.Format(time.RFC3339Nano)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerBase(p.HTTP)+RouteSegments+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("segments request: %w", err)
	}
	for k, v := range h.o.PeerHeader {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", redactErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list segments: %s", resp.Status)
	}
	var segs []storage.Segment
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&segs); err != nil {
		return nil, fmt.Errorf("list segments: decode: %w", err)
	}
	return segs, nil
}

// serveExport streams the export.
func (h *handler) serveExport(w http.ResponseWriter, r *http.Request) {
	rq, err := parseRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	plan, pieces, err := h.plan(ctx, rq)
	if err != nil {
		h.log.Error("plan export", "camera", rq.camera, "err", err)
		writeError(w, http.StatusInternalServerError, "plan export: read index")
		return
	}
	if len(pieces) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no footage in range", "gaps": plan.Gaps})
		return
	}
	gaps, _ := json.Marshal(plan.Gaps)
	hd := w.Header()
	hd.Set("Content-Type", "video/mp4")
	hd.Set(GapsHeader, string(gaps))
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, fileName(rq)))
	hd.Set("Trailer", ErrorTrailer)
	w.WriteHeader(http.StatusOK)

	st := newStreamer(w, pieces[0].init)
	if err := st.writeInit(); err != nil {
		return // the client went away
	}
	for i := range pieces {
		if err := h.streamPiece(ctx, st, &pieces[i], rq.to); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("export stopped early", "camera", rq.camera, "server", serverName(h.o.Self, pieces[i].server), "err", err)
				hd.Set(ErrorTrailer, err.Error())
			}
			return
		}
	}
}

func fileName(rq rangeQuery) string {
	cam := strings.Map(func(r rune) rune {
		if r == '/' || r == '"' || r == '\\' || r < ' ' || r > '~' {
			return '_'
		}
		return r
	}, rq.camera)
	return fmt.Sprintf("%s_%s.mp4", cam, rq.from.UTC().Format("20060102T150405Z"))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
