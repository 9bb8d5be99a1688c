package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// maxPeerBody bounds what we read from a peer, so a confused or hostile
// peer cannot exhaust memory.
const maxPeerBody = 16 << 20

// peerView is what one peer told us, or why it told us nothing.
type peerView struct {
	name     string
	cameras  *api.Cameras
	timeline *Timeline
	camErr   error
	tlErr    error
}

// fetchPeers asks every alive peer with an HTTP address for its cameras and
// timeline, all in parallel, each bounded by PeerTimeout.
func (h *handler) fetchPeers(ctx context.Context, servers []api.ServerInfo, self string, from, to time.Time) []*peerView {
	var out []*peerView
	var wg sync.WaitGroup
	for _, s := range servers {
		if s.Name == self || (s.State != "alive" && s.State != "suspect") {
			continue
		}
		pv := &peerView{name: s.Name}
		out = append(out, pv)
		if s.HTTP == "" {
			pv.camErr = errors.New("no HTTP address gossiped")
			continue
		}
		base := url.URL{Scheme: h.o.PeerScheme, Host: s.HTTP}
		q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
		wg.Add(2)
		go func() {
			defer wg.Done()
			u := base
			u.Path = "/api/v1/cameras"
			var c api.Cameras
			if pv.camErr = h.getJSON(ctx, u.String(), &c); pv.camErr == nil {
				pv.cameras = &c
			}
		}()
		go func() {
			defer wg.Done()
			u := base
			u.Path = "/api/v1/timeline"
			u.RawQuery = q.Encode()
			var t Timeline
			if pv.tlErr = h.getJSON(ctx, u.String(), &t); pv.tlErr == nil {
				pv.timeline = &t
			}
		}()
	}
	wg.Wait()
	for _, pv := range out {
		if pv.camErr != nil || pv.tlErr != nil {
			h.log.Warn("status page: peer unavailable", "peer", pv.name, "cameras_err", pv.camErr, "timeline_err", pv.tlErr)
		}
	}
	return out
}

func (h *handler) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, h.o.PeerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if k, val := h.o.Auth.PeerHeader(); k != "" {
		req.Header.Set(k, val)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %s", h.o.PeerTimeout)
		}
		return errors.New("unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("answered HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPeerBody)).Decode(v); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %s", h.o.PeerTimeout)
		}
		return errors.New("answered malformed JSON")
	}
	return nil
}
