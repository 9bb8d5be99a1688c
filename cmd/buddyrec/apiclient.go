package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/web"
)

// serverAPI calls the API of the server a config describes, as the
// commands run beside it (plan, and the operations that follow) do. It
// authenticates with what the config's holder has: the API token of
// token_file, else the site's peer token derived from the gossip key;
// neither is ever printed.
type serverAPI struct {
	base   string // http(s)://host:port
	auth   string // Authorization header value, or ""
	client *http.Client
}

func newServerAPI(cfg *config.Config) (*serverAPI, error) {
	host, port, err := net.SplitHostPort(cfg.Listen.HTTP)
	if err != nil {
		return nil, fmt.Errorf("%s: [listen] http %q: %w", cfg.File, cfg.Listen.HTTP, err)
	}
	// A server bound to every address is reached on this machine.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	a := &serverAPI{base: "http://" + net.JoinHostPort(host, port)}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.HTTP.CertFile != "" {
		a.base = "https://" + net.JoinHostPort(host, port)
		roots, err := config.SiteRoots(cfg.HTTP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	a.client = &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	switch {
	case cfg.HTTP.TokenFile != "":
		b, err := os.ReadFile(cfg.HTTP.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s: token_file: %w", cfg.File, err)
		}
		a.auth = "Bearer " + strings.TrimSpace(string(b))
	case len(cfg.GossipKey) > 0:
		a.auth = "Bearer " + web.PeerToken(cfg.GossipKey)
	}
	return a, nil
}

// getJSON GETs path into v; an error answer is reported with the server's
// own message.
func (a *serverAPI) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	if a.auth != "" {
		req.Header.Set("Authorization", a.auth)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("is the server running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", a.base+path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("GET %s: %s", a.base+path, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", a.base+path, err)
	}
	return nil
}

// post POSTs body as JSON (nil: an empty body) to path and returns the
// answer's status and body, whatever the status: callers that define
// error answers (a refused reload's problems) read them. err is only for
// a request that got no answer.
func (a *serverAPI) post(ctx context.Context, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.auth != "" {
		req.Header.Set("Authorization", a.auth)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("is the server running? %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("POST %s: %w", a.base+path, err)
	}
	return resp.StatusCode, b, nil
}

// postJSON POSTs body (JSON, may be nil) to path and decodes a 2xx answer
// into v (nil: ignored); an error answer is reported with the server's own
// message.
func (a *serverAPI) postJSON(ctx context.Context, path string, body, v any) error {
	status, b, err := a.post(ctx, path, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%d %s: %s", status, http.StatusText(status), e.Error)
		}
		return fmt.Errorf("POST %s: %d %s", a.base+path, status, http.StatusText(status))
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("POST %s: %w", a.base+path, err)
	}
	return nil
}
