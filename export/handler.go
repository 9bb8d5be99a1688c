package export

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/buddyrec/buddyrec/api"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
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

// DigestTrailer is an HTTP trailer of every export: the hex SHA-256 of the
// body, so whoever keeps the file as evidence can show it is the file the
// server sent. ContentDigestTrailer carries the same digest as RFC 9530's
// Content-Digest, for clients that check it generically.
const (
	DigestTrailer        = "X-Buddyrec-Sha256"
	ContentDigestTrailer = "Content-Digest"
)

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

// Handler serves the export routes (see Route*) and answers, for the
// recordings API and the timeline, which footage of a camera the site
// holds (Footage).
type Handler struct{ h *handler }

// ServeHTTP serves the export routes.
func (x *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { x.h.mux.ServeHTTP(w, r) }

// Held is a segment with the server that holds it.
type Held struct {
	storage.Segment
	// Server holds the file (this server or a peer).
	Server string `json:"server"`
}

// Footage lists the segments of camera overlapping [from, to) that this
// server and every alive peer hold, from the same sources an export
// reads, in time order. A peer that cannot be asked is listed in failed;
// it never fails the answer.
func (x *Handler) Footage(ctx context.Context, camera string, from, to time.Time) (held []Held, failed []PeerFailure, err error) {
	h := x.h
	local, err := h.o.Store.Segments(camera, from, to)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range local {
		held = append(held, Held{Segment: s, Server: h.o.Self})
	}
	remote, failed := h.peerSegments(ctx, rangeQuery{camera: camera, from: from, to: to})
	for _, c := range remote {
		held = append(held, Held{Segment: c.seg, Server: c.server})
	}
	sort.SliceStable(held, func(i, j int) bool { return held[i].Start.Before(held[j].Start) })
	return held, failed, nil
}

// PeerFailure is a peer that could not be asked for its footage.
type PeerFailure struct {
	Server string
	Err    string // never holds credentials (see redactErr)
}

func (f PeerFailure) String() string { return "peer " + f.Server + ": " + f.Err }

// NewHandler returns the handler of the export routes (see Route*).
func NewHandler(o Options) *Handler {
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
	return &Handler{h: h}
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
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &rq.from}, {"to", &rq.to}} {
		v := q.Get(p.name)
		if v == "" {
			return rq, errors.New(p.name + ": required, an RFC3339 time")
		}
		t, err := api.ParseTime(p.name, v)
		if err != nil {
			return rq, err
		}
		*p.t = t
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

// serveFile serves one segment file, with Range support and, when asked
// (WantReprDigestHeader), the SHA-256 of a closed segment's whole file.
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
		if !seg.Open && wantsSHA256(r.Header.Get(WantReprDigestHeader)) {
			sum, err := fileSHA256(f, fi.Size())
			if err != nil {
				h.log.Error("digest segment", "file", seg.File, "err", err)
				writeError(w, http.StatusInternalServerError, "read segment")
				return
			}
			w.Header().Set(ReprDigestHeader, FormatReprDigest(sum))
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

// planned is a piece whose init segment was read and whose start keyframe
// was found.
type planned struct {
	piece
	init    *fmp4.Init
	dataOff int64 // offset of the first fragment
	// startOff is the offset of the fragment holding the start keyframe,
	// startDTS that keyframe's decode time (driving track, segment media
	// time) and startWall its wall clock.
	startOff  int64
	startDTS  uint64
	startWall time.Time
}

// plan resolves the pieces of an export: local and peer segments merged
// into one timeline, each piece's start keyframe found, a piece cut where
// the next one's start keyframe falls inside it (footage recorded twice is
// played once), and the export cut short where codec parameters change.
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
	remote, failed := h.peerSegments(ctx, rq)
	cands = append(cands, remote...)
	for _, f := range failed {
		out.Warnings = append(out.Warnings, f.String())
	}

	infos := map[string]segInfo{}
	inspect := func(c *candidate) (segInfo, error) {
		key := c.server + "\x00" + c.seg.File
		if info, ok := infos[key]; ok {
			return info, nil
		}
		info, err := h.readPieceInit(ctx, c)
		if err == nil {
			infos[key] = info
		}
		return info, err
	}
	// The hole tolerance is two frame intervals of the camera, read from
	// the earliest segment of the range.
	var frame time.Duration
	first := -1
	for i, c := range cands {
		if c.seg.End.After(rq.from) && c.seg.Start.Before(rq.to) && (first < 0 || c.seg.Start.Before(cands[first].seg.Start)) {
			first = i
		}
	}
	if first >= 0 {
		if info, err := inspect(&cands[first]); err == nil {
			frame = info.frame
		}
	}
	pieces, gaps := mergeTimeline(cands, rq.from, rq.to, holeTolerance(frame))

	var res []planned
	for i, p := range pieces {
		info, err := inspect(&p.candidate)
		if err == nil && len(res) > 0 && !sameTracks(res[0].init, info.init) {
			err = errParamsChanged
		}
		pl := planned{piece: p, init: info.init, dataOff: info.dataOff}
		if err == nil {
			err = h.findStart(ctx, &pl)
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
		// Cut the pieces before at this one's start keyframe: from there
		// on this piece has the footage, and a moment is played once.
		for len(res) > 0 && pl.startWall.Before(res[len(res)-1].to) {
			prev := &res[len(res)-1]
			prev.to = h.ownCopyOf(ctx, prev, pl.startWall)
			if prev.to.After(prev.startWall) {
				break
			}
			pl.afterGap = prev.afterGap
			res = res[:len(res)-1] // wholly covered by this piece
		}
		res = append(res, pl)
	}
	for _, p := range res {
		out.Pieces = append(out.Pieces, Piece{
			Start: p.startWall.UTC(), End: p.to.UTC(), Server: serverName(h.o.Self, p.server),
			RecordedBy: p.seg.RecordedBy, SegmentStart: p.seg.Start.UTC(),
		})
	}
	for _, g := range gaps {
		g.Start, g.End = g.Start.UTC(), g.End.UTC()
		out.Gaps = append(out.Gaps, g)
	}
	return out, res, nil
}

// findStart finds where p begins: its start keyframe's fragment, decode
// time and wall clock.
func (h *handler) findStart(ctx context.Context, p *planned) error {
	p.startOff, p.startDTS, p.startWall = p.dataOff, 0, p.seg.Start
	if p.mode == startAtBeginning {
		return nil
	}
	src, err := h.openSource(ctx, &p.candidate)
	if err != nil {
		return err
	}
	defer src.Close()
	drive := driveTrack(p.init)
	off, dts, err := lastKeyframeBefore(src, p.dataOff, p.limit(), uint32(drive.ID), int64(drive.TimeScale), p.seg.Start, p.from)
	if err != nil {
		return fmt.Errorf("find start in %s: %w", p.seg.File, err)
	}
	p.startOff, p.startDTS = off, dts
	p.startWall = p.seg.Start.Add(ticksToDuration(int64(dts), int64(drive.TimeScale)))
	return nil
}

// joinWindow bounds how far apart two recorders' wall clocks may place the
// same keyframe: each dates its session's first segment by the arrival of
// its first keyframe, the rest by media time (and later segments within a
// frame of their keyframes' arrival), so copies of one frame differ by
// network jitter and clock drift (milliseconds), far less than a GOP.
const joinWindow = 200 * time.Millisecond

// ownCopyOf is where prev must end so that the next piece, starting at the
// keyframe it dates at, plays from exactly that frame: prev's own copy of
// the keyframe (its keyframe nearest at within joinWindow), so prev stops
// right before it. Cutting at the next piece's wall clock instead could
// play the keyframe twice or drop the frames before it, whenever the two
// recorders' clocks differ by a millisecond; with H.265's open GOPs a
// frame played twice is a duplicate picture order count that decoders
// reject. Without such a keyframe (prev is a different stream), at.
func (h *handler) ownCopyOf(ctx context.Context, prev *planned, at time.Time) time.Time {
	if !at.After(prev.startWall) {
		return at
	}
	src, err := h.openSource(ctx, &prev.candidate)
	if err != nil {
		return at
	}
	defer src.Close()
	drive := driveTrack(prev.init)
	k, ok, err := nearestKeyframe(src, prev.startOff, prev.limit(), uint32(drive.ID), int64(drive.TimeScale), prev.seg.Start, at, joinWindow)
	if err != nil || !ok || !k.After(prev.startWall) {
		return at
	}
	return k
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
func (h *handler) peerSegments(ctx context.Context, rq rangeQuery) ([]candidate, []PeerFailure) {
	if h.o.Peers == nil {
		return nil, nil
	}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		cands  []candidate
		failed []PeerFailure
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
				failed = append(failed, PeerFailure{Server: p.Name, Err: err.Error()})
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
	sort.Slice(failed, func(i, j int) bool { return failed[i].Server < failed[j].Server })
	return cands, failed
}

func (h *handler) fetchSegments(ctx context.Context, p Peer, rq rangeQuery) ([]storage.Segment, error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.PeerTimeout)
	defer cancel()
	return FetchSegments(ctx, h.client, h.o.PeerHeader, p, rq.camera, rq.from, rq.to)
}

// FetchSegments asks peer p for its own segments of camera overlapping
// [from, to) (RouteSegments), authenticating with header. Errors never
// hold credentials or the query.
func FetchSegments(ctx context.Context, client *http.Client, header http.Header, p Peer, camera string, from, to time.Time) ([]storage.Segment, error) {
	q := url.Values{"camera": {camera}, "from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerBase(p.HTTP)+RouteSegments+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("segments request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
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
	hd.Set("Trailer", DigestTrailer+", "+ContentDigestTrailer+", "+ErrorTrailer)
	w.WriteHeader(http.StatusOK)

	sum := sha256.New()
	st := newStreamer(io.MultiWriter(w, sum), pieces[0].init, pieces[0].startWall)
	st.flush = func() { http.NewResponseController(w).Flush() } //nolint:errcheck // best effort
	defer func() {
		// The digest of exactly the bytes sent, also when the export
		// stopped early (then ErrorTrailer says why).
		d := sum.Sum(nil)
		hd.Set(DigestTrailer, hex.EncodeToString(d))
		hd.Set(ContentDigestTrailer, "sha-256=:"+base64.StdEncoding.EncodeToString(d)+":")
	}()
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

// writeJSON and writeError write an API answer: api.WriteJSON and
// api.WriteError under this package's names.
var (
	writeJSON  = api.WriteJSON
	writeError = api.WriteError
)
