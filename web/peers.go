package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/events"
)

// maxPeerBody bounds what we read from a peer, so a confused or hostile
// peer cannot exhaust memory.
const maxPeerBody = 16 << 20

// peerView is what one peer told us, or why it told us nothing.
type peerView struct {
	name     string
	cameras  *api.Cameras
	timeline *Timeline
	events   []events.Event
	camErr   error
	tlErr    error
	evErr    error
}

// fetchPeers asks every alive peer with an HTTP address for its cameras and
// timeline, all in parallel, each bounded by PeerTimeout.
func (h *handler) fetchPeers(ctx context.Context, servers []api.ServerInfo, self string, from, to time.Time) []*peerView {
	var out []*peerView
	var wg sync.WaitGroup
	for _, s := range servers {
		if s.Name == self || !s.State.Up() {
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
		wg.Add(3)
		go func() {
			defer wg.Done()
			u := base
			u.Path = "/api/v1/events"
			u.RawQuery = url.Values{"limit": {fmt.Sprint(h.o.EventLimit)}}.Encode()
			var resp struct {
				Events []events.Event `json:"events"`
			}
			if pv.evErr = h.getJSON(ctx, u.String(), &resp); pv.evErr == nil {
				pv.events = resp.Events
			}
		}()
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
		if pv.camErr != nil || pv.tlErr != nil || pv.evErr != nil {
			h.log.Warn("status page: peer unavailable", "peer", pv.name, "cameras_err", pv.camErr, "timeline_err", pv.tlErr, "events_err", pv.evErr)
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
		return peerError(err)
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

// ackOnPeer forwards an acknowledgement to the server whose log holds the
// event, so a technician acknowledges any alarm from any server's page.
func (h *handler) ackOnPeer(ctx context.Context, peerHTTP, id, by string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*h.o.PeerTimeout)
	defer cancel()
	u := url.URL{Scheme: h.o.PeerScheme, Host: peerHTTP, Path: "/api/v1/events/" + url.PathEscape(id) + "/ack"}
	body, _ := json.Marshal(map[string]string{"by": by})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if k, val := h.o.Auth.PeerHeader(); k != "" {
		req.Header.Set(k, val)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return peerError(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return events.ErrNotFound
	}
	return fmt.Errorf("answered HTTP %d", resp.StatusCode)
}

// peerError says why a peer could not be asked, in words a technician can
// act on: a certificate the site does not trust is a configuration fix
// ([http] ca_file), not a network fault.
func peerError(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknownCA):
		return errors.New("certificate not trusted (set [http] ca_file to the site CA)")
	case errors.As(err, &hostname):
		return errors.New("certificate does not name this address")
	case errors.As(err, &invalid):
		return errors.New("certificate invalid (expired or not for a server)")
	case errors.As(err, &verify):
		return errors.New("certificate not accepted")
	}
	return errors.New("unreachable")
}
