package backfill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/storage"
)

// copyState is persisted beside the copy in progress, so that a restart
// resumes it: which segment from which peer, and the digest the peer
// gave for the whole file.
type copyState struct {
	Peer    string          `json:"peer"`
	Segment storage.Segment `json:"segment"`
	SHA256  []byte          `json:"sha256,omitempty"`
}

// errRefused marks a copy that arrived but failed verification.
var errRefused = errors.New("copy refused")

// errGone marks a segment the peer no longer holds.
var errGone = errors.New("segment gone from peer")

// copyOne copies c and records the outcome.
func (r *Runner) copyOne(ctx context.Context, c Copy) {
	src := Source{Peer: c.Peer, Key: KeyOf(c.Segment)}
	if room, err := r.o.Store.Room(); err == nil && room < 2*c.Segment.Bytes {
		// Copying now would only make retention delete the oldest
		// footage, possibly this copy: wait for space.
		r.mu.Lock()
		r.lastErr[src.Key] = "waiting for disk space (free space at the min_free floor)"
		r.avoid[src] = time.Now().Add(time.Minute)
		r.mu.Unlock()
		return
	}
	rate, how := r.o.Rate, ""
	if r.o.RateFor != nil { // asked outside mu: it may look at the node's peers
		rate, how = r.o.RateFor(export.Peer{Name: c.Peer, HTTP: r.peerHTTP(c.Peer)})
	}
	r.mu.Lock()
	r.lim.setRate(rate)
	r.rateHow = how
	r.cur = &api.BackfillCopy{Camera: c.Segment.Camera, Peer: c.Peer, RecordedBy: c.Segment.RecordedBy,
		SegmentStart: c.Segment.Start.UTC(), Bytes: c.Segment.Bytes}
	r.mu.Unlock()
	seg, err := r.fetch(ctx, c)
	if err == nil {
		seg, err = r.o.Store.Import(c.Segment, r.tempPath())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = nil
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the copy resumes after the restart
		}
		if errors.Is(err, errGone) {
			if ps := r.peers[c.Peer]; ps != nil {
				delete(ps.cands, src.Key)
			}
			r.log.Info("backfill: segment gone from peer", "peer", c.Peer, "camera", c.Segment.Camera, "start", c.Segment.Start)
			return
		}
		r.fails[src]++
		wait := min(r.o.RetryAfter<<min(r.fails[src]-1, 16), 10*time.Minute)
		r.avoid[src] = time.Now().Add(wait)
		r.lastErr[src.Key] = err.Error()
		if errors.Is(err, errRefused) {
			r.refused++
			os.Remove(r.tempPath())  //nolint:errcheck // a refused copy is never kept
			os.Remove(r.statePath()) //nolint:errcheck
			if r.o.OnRefused != nil {
				go r.o.OnRefused(c, err)
			}
		}
		r.log.Warn("backfill: copy failed", "peer", c.Peer, "camera", c.Segment.Camera, "start", c.Segment.Start, "retry_in", wait, "err", err)
		return
	}
	os.Remove(r.statePath()) //nolint:errcheck // the copy is indexed; a stale state only restarts nothing
	delete(r.fails, src)
	delete(r.lastErr, src.Key)
	if ps := r.peers[c.Peer]; ps != nil {
		delete(ps.cands, src.Key)
	}
	r.copied++
	r.bytes += seg.Bytes
	ep := r.episodes[c.Peer]
	if ep == nil {
		ep = &episode{started: time.Now(), cams: map[string]*camProgress{}}
		r.episodes[c.Peer] = ep
	}
	p := ep.cams[seg.Camera]
	if p == nil {
		p = &camProgress{}
		ep.cams[seg.Camera] = p
	}
	p.segments++
	p.bytes += seg.Bytes
	p.footage += seg.End.Sub(seg.Start)
	r.log.Debug("backfill: copied", "peer", c.Peer, "file", seg.File, "bytes", seg.Bytes)
	r.episodeLocked(c.Peer, time.Now())
}

// loadState reads the persisted state; a missing or unreadable one is none.
func (r *Runner) loadState() (copyState, bool) {
	b, err := os.ReadFile(r.statePath())
	if err != nil {
		return copyState{}, false
	}
	var st copyState
	if json.Unmarshal(b, &st) != nil {
		return copyState{}, false
	}
	return st, true
}

func (r *Runner) saveState(st copyState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := r.statePath() + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.statePath())
}

// fetch copies the file of c into tempPath, resuming a copy of the same
// segment left by an earlier run, and verifies it: the size the peer
// lists and the SHA-256 it sends for the whole file.
func (r *Runner) fetch(ctx context.Context, c Copy) (storage.Segment, error) {
	var offset int64
	prev, resumed := r.loadState()
	if resumed && prev.Peer == c.Peer && KeyOf(prev.Segment) == KeyOf(c.Segment) && prev.Segment.Bytes == c.Segment.Bytes && len(prev.SHA256) > 0 {
		if fi, err := os.Stat(r.tempPath()); err == nil {
			offset = min(fi.Size(), c.Segment.Bytes)
		}
	} else {
		prev = copyState{}
	}
	f, err := os.OpenFile(r.tempPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return storage.Segment{}, fmt.Errorf("open copy: %w", err)
	}
	defer f.Close()

	resp, err := r.request(ctx, c, offset)
	if err != nil {
		return storage.Segment{}, err
	}
	defer resp.Body.Close()
	sum, err := export.ParseReprDigest(resp.Header.Get(export.ReprDigestHeader))
	if err != nil {
		return storage.Segment{}, fmt.Errorf("peer %s sent no usable digest: %w", c.Peer, err)
	}
	if offset > 0 && (resp.StatusCode != http.StatusPartialContent || !bytes.Equal(sum, prev.SHA256) || !rangeStartsAt(resp, offset)) {
		// The peer's file is not the one the copy began with, or it
		// ignored the range: begin again.
		offset = 0
		if resp.StatusCode == http.StatusPartialContent {
			resp.Body.Close()
			if resp, err = r.request(ctx, c, 0); err != nil {
				return storage.Segment{}, err
			}
			defer resp.Body.Close()
			if sum, err = export.ParseReprDigest(resp.Header.Get(export.ReprDigestHeader)); err != nil {
				return storage.Segment{}, fmt.Errorf("peer %s sent no usable digest: %w", c.Peer, err)
			}
		}
	}
	if err := f.Truncate(offset); err != nil {
		return storage.Segment{}, fmt.Errorf("truncate copy: %w", err)
	}
	if err := r.saveState(copyState{Peer: c.Peer, Segment: c.Segment, SHA256: sum}); err != nil {
		return storage.Segment{}, fmt.Errorf("save copy state: %w", err)
	}
	h := sha256.New()
	if offset > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, offset)); err != nil {
			return storage.Segment{}, fmt.Errorf("read copy: %w", err)
		}
		r.log.Info("backfill: resuming copy", "peer", c.Peer, "camera", c.Segment.Camera, "at", offset, "of", c.Segment.Bytes)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return storage.Segment{}, err
	}
	n, err := r.stream(ctx, f, h, resp.Body, offset, c.Segment.Bytes)
	if err != nil {
		return storage.Segment{}, err
	}
	if n < c.Segment.Bytes {
		// Cut short (the peer went away): what arrived is kept and the
		// copy resumes from there.
		return storage.Segment{}, fmt.Errorf("peer %s sent %d of %d bytes", c.Peer, n, c.Segment.Bytes)
	}
	if got := h.Sum(nil); !bytes.Equal(got, sum) {
		return storage.Segment{}, fmt.Errorf("%w: sha-256 %x, the peer sent %x", errRefused, got, sum)
	}
	if err := f.Close(); err != nil {
		return storage.Segment{}, fmt.Errorf("close copy: %w", err)
	}
	return c.Segment, nil
}

// request asks the peer for the file from offset on, with its digest.
func (r *Runner) request(ctx context.Context, c Copy, offset int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, export.FileURL(export.Peer{Name: c.Peer, HTTP: r.peerHTTP(c.Peer)}, c.Segment), nil)
	if err != nil {
		return nil, fmt.Errorf("segment request: %w", err)
	}
	for k, v := range r.o.PeerHeader {
		req.Header[k] = v
	}
	req.Header.Set(export.WantReprDigestHeader, "sha-256=10")
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch segment from %s: %w", c.Peer, export.RedactErr(err))
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return resp, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, errGone
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch segment from %s: %s", c.Peer, resp.Status)
	}
}

// peerHTTP is the address of a peer as last listed.
func (r *Runner) peerHTTP(name string) string {
	for _, p := range r.o.Peers() {
		if p.Name == name {
			return p.HTTP
		}
	}
	return ""
}

// rangeStartsAt checks a 206's Content-Range begins at offset.
func rangeStartsAt(resp *http.Response, offset int64) bool {
	cr := resp.Header.Get("Content-Range") // "bytes a-b/size"
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return false
	}
	a, _, ok := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(a, 10, 64)
	return ok && err == nil && n == offset
}

// copyChunk is the unit of reading, rate limiting and progress.
const copyChunk = 128 << 10

// stream appends body to f (at offset) through h, at the configured rate,
// and reports how many bytes the file holds in the end. It never writes
// more than want: a peer sending more is refused.
func (r *Runner) stream(ctx context.Context, f *os.File, h hash.Hash, body io.Reader, offset, want int64) (int64, error) {
	buf := make([]byte, copyChunk)
	n := offset
	for {
		k, rerr := io.ReadFull(body, buf)
		if k > 0 {
			if err := r.lim.wait(ctx, k); err != nil {
				return n, err
			}
			if n+int64(k) > want {
				return n + int64(k), fmt.Errorf("%w: the peer sent more than the %d bytes it lists", errRefused, want)
			}
			if _, err := f.Write(buf[:k]); err != nil {
				return n, fmt.Errorf("write copy: %w", err)
			}
			h.Write(buf[:k])
			n += int64(k)
			r.mu.Lock()
			if r.cur != nil {
				r.cur.Done = n
			}
			r.mu.Unlock()
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return n, nil
		default:
			return n, fmt.Errorf("read segment: %w", export.RedactErr(rerr))
		}
	}
}
