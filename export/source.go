package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/buddyrec/buddyrec/storage"
)

// source is the bytes of one segment file, local or on a peer. ReadAt is
// only called from one goroutine at a time.
type source interface {
	io.ReaderAt
	Close() error
}

// limit is how many bytes of seg are complete fragments: the index's byte
// count, which storage updates only after a fragment is fully written, so
// the torn tail of a segment still being recorded is never read.
func (c *candidate) limit() int64 { return c.seg.Bytes }

// openSource opens the file of c.
func (h *handler) openSource(ctx context.Context, c *candidate) (source, error) {
	if c.local() {
		f, err := os.Open(h.o.Store.SegmentPath(c.seg))
		if err != nil {
			return nil, fmt.Errorf("open segment %s: %w", c.seg.File, err)
		}
		return f, nil
	}
	return &httpReaderAt{ctx: ctx, h: h, url: fileURL(c.peer, c.seg), limit: c.limit(), peer: c.peer.Name}, nil
}

// segInfo is what planning reads from the head of a segment file.
type segInfo struct {
	init    *fmp4.Init
	dataOff int64         // offset of the first fragment
	frame   time.Duration // the driving track's frame interval; 0 if unknown
}

// readPieceInit reads the init segment of c and, when it is at hand, the
// header of its first fragment for the frame interval. For a peer it
// fetches only the file's first bytes, so planning costs one small request
// per peer segment.
func (h *handler) readPieceInit(ctx context.Context, c *candidate) (segInfo, error) {
	var r io.ReaderAt
	limit := c.limit()
	if c.local() {
		src, err := h.openSource(ctx, c)
		if err != nil {
			return segInfo{}, err
		}
		defer src.Close()
		r = src
	} else {
		const probe = 64 << 10
		n := min(int64(probe), c.limit())
		hr := &httpReaderAt{ctx: ctx, h: h, url: fileURL(c.peer, c.seg), limit: n, peer: c.peer.Name}
		defer hr.Close()
		buf := make([]byte, n)
		if k, err := hr.ReadAt(buf, 0); int64(k) < n {
			return segInfo{}, fmt.Errorf("read init of %s from %s: %w", c.seg.File, c.peer.Name, err)
		}
		r, limit = bytes.NewReader(buf), n
		if _, _, err := readInit(r); err != nil && n < c.limit() { // a huge init: read it in place
			hr2 := &httpReaderAt{ctx: ctx, h: h, url: fileURL(c.peer, c.seg), limit: c.limit(), peer: c.peer.Name}
			defer hr2.Close()
			r, limit = hr2, c.limit()
		}
	}
	init, off, err := readInit(r)
	if err != nil {
		return segInfo{}, err
	}
	info := segInfo{init: init, dataOff: off}
	var f fragment
	if _, err := readFragment(r, off, limit, &f, true); err == nil {
		drive := driveTrack(init)
		if t := f.track(uint32(drive.ID)); t != nil {
			info.frame = frameInterval(t.samples, int64(drive.TimeScale))
		}
	}
	return info, nil
}

// frameInterval is the median sample duration of a track's samples.
func frameInterval(samples []sample, ts int64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	durs := make([]uint32, len(samples))
	for i, s := range samples {
		durs[i] = s.dur
	}
	slices.Sort(durs)
	return ticksToDuration(int64(durs[len(durs)/2]), ts)
}

// peerBase turns a peer's advertised HTTP address ("host:port" or a URL)
// into a base URL.
func peerBase(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

func fileURL(p Peer, seg storage.Segment) string { return FileURL(p, seg) }

// FileURL is where peer p serves the file of seg (RouteFile).
func FileURL(p Peer, seg storage.Segment) string {
	q := url.Values{"camera": {seg.Camera}, "start": {strconv.FormatInt(seg.Start.UnixNano(), 10)}}
	return peerBase(p.HTTP) + "/api/v1/segments/file?" + q.Encode()
}

// httpReaderAt reads a peer's segment file with HTTP range requests. It
// keeps one response open and serves sequential reads (and short forward
// skips) from it, so streaming a file costs one request; a backward or long
// jump opens a new range.
type httpReaderAt struct {
	ctx   context.Context
	h     *handler
	url   string
	peer  string
	limit int64 // bytes of the file to read at most

	body io.ReadCloser
	pos  int64 // file offset of the next byte of body
}

// maxSkip is the largest forward jump served by discarding bytes of the
// open response rather than opening a new range.
const maxSkip = 1 << 20

func (r *httpReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.limit {
		return 0, io.EOF
	}
	short := int64(len(p)) > r.limit-off
	if short {
		p = p[:r.limit-off]
	}
	if r.body != nil && (off < r.pos || off-r.pos > maxSkip) {
		r.Close()
	}
	if r.body != nil && off > r.pos {
		n, err := io.CopyN(io.Discard, r.body, off-r.pos)
		r.pos += n
		if err != nil {
			r.Close()
		}
	}
	if r.body == nil {
		if err := r.open(off); err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(r.body, p)
	r.pos += int64(n)
	if err != nil {
		r.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return n, io.EOF
		}
		return n, fmt.Errorf("read segment from %s: %w", r.peer, err)
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}

func (r *httpReaderAt) open(off int64) error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return fmt.Errorf("segment request to %s: %w", r.peer, err)
	}
	for k, v := range r.h.o.PeerHeader {
		req.Header[k] = v
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, r.limit-1))
	resp, err := r.h.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch segment from %s: %w", r.peer, redactErr(err))
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
	case resp.StatusCode == http.StatusOK && off == 0:
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return io.EOF
	default:
		resp.Body.Close()
		return fmt.Errorf("fetch segment from %s: %s", r.peer, resp.Status)
	}
	r.body, r.pos = resp.Body, off
	return nil
}

func (r *httpReaderAt) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// RedactErr strips URL query and credentials from *url.Error messages, for
// errors of requests to peers that may reach a log or the page.
func RedactErr(err error) error { return redactErr(err) }

// redactErr strips URL query and credentials from *url.Error messages.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return fmt.Errorf("%s %s: %w", ue.Op, u.Redacted(), ue.Err)
		}
	}
	return err
}
