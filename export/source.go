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
	"strconv"
	"strings"

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

// readPieceInit reads the init segment of c. For a peer it fetches only the
// file's first bytes, so planning costs one small request per peer segment.
func (h *handler) readPieceInit(ctx context.Context, c *candidate) (*fmp4.Init, int64, error) {
	if c.local() {
		src, err := h.openSource(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		defer src.Close()
		return readInit(src)
	}
	const probe = 64 << 10
	n := min(int64(probe), c.limit())
	r := &httpReaderAt{ctx: ctx, h: h, url: fileURL(c.peer, c.seg), limit: n, peer: c.peer.Name}
	defer r.Close()
	buf := make([]byte, n)
	if k, err := r.ReadAt(buf, 0); int64(k) < n {
		return nil, 0, fmt.Errorf("read init of %s from %s: %w", c.seg.File, c.peer.Name, err)
	}
	init, off, err := readInit(bytes.NewReader(buf))
	if err != nil && n < c.limit() { // a huge init: read it in place
		r2 := &httpReaderAt{ctx: ctx, h: h, url: fileURL(c.peer, c.seg), limit: c.limit(), peer: c.peer.Name}
		defer r2.Close()
		return readInit(r2)
	}
	return init, off, err
}

// peerBase turns a peer's advertised HTTP address ("host:port" or a URL)
// into a base URL.
func peerBase(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

func fileURL(p Peer, seg storage.Segment) string {
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
