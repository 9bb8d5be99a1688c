package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/web"
)

// Manifest is the JSON file `buddyrec export` writes beside the MP4: what
// the file holds and where it came from, so it can be handed over as
// evidence with its digest.
type Manifest struct {
	Camera string    `json:"camera"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// File is the MP4's name (beside the manifest), Bytes its size and
	// SHA256 its hex digest, checked against the server's trailer.
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Server is the server asked; ExportedAt when the export ended.
	Server     string    `json:"server"`
	ExportedAt time.Time `json:"exported_at"`
	// Pieces say which server held (and which recorded) each stretch,
	// Gaps what the file lacks; both as the server planned the export.
	Pieces   []export.Piece `json:"pieces"`
	Gaps     []export.Gap   `json:"gaps"`
	Warnings []string       `json:"warnings,omitempty"`
}

func cmdExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	camera := fs.String("camera", "", "camera id, home/name (e.g. rec-a/lobby)")
	fromS := fs.String("from", "", "start: RFC3339 time (2026-03-04T05:06:07Z) or a duration before now (-10m)")
	toS := fs.String("to", "", "end: RFC3339 time or a duration before now; default now")
	out := fs.String("o", "", "output MP4 file; the manifest goes beside it (NAME.json)")
	server := fs.String("server", "", "server to ask, host:port or URL; default this config's [listen] http")
	cfg, code := loadConfig(fs, args, stderr)
	if cfg == nil {
		return code
	}
	now := time.Now()
	from, err := parseWhen(*fromS, now)
	if err != nil {
		fmt.Fprintf(stderr, "buddyrec export: -from: %v\n", err)
		return 2
	}
	to := now
	if *toS != "" {
		if to, err = parseWhen(*toS, now); err != nil {
			fmt.Fprintf(stderr, "buddyrec export: -to: %v\n", err)
			return 2
		}
	}
	switch {
	case *camera == "" || !strings.Contains(*camera, "/"):
		fmt.Fprintln(stderr, "buddyrec export: -camera home/name is required (e.g. rec-a/lobby)")
		return 2
	case *out == "":
		fmt.Fprintln(stderr, "buddyrec export: -o FILE.mp4 is required")
		return 2
	case !to.After(from):
		fmt.Fprintln(stderr, "buddyrec export: -to must be after -from")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := exportToFile(ctx, cfg, *server, *camera, from, to, *out)
	if err != nil {
		fmt.Fprintf(stderr, "buddyrec export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s from %s to %s, %d bytes, sha256 %s\n", *out, m.Camera,
		m.From.Format(time.RFC3339), m.To.Format(time.RFC3339), m.Bytes, m.SHA256)
	for _, p := range m.Pieces {
		fmt.Fprintf(stdout, "  %s – %s  held by %s (recorded by %s)\n", p.Start.Format("15:04:05.000"), p.End.Format("15:04:05.000"), p.Server, p.RecordedBy)
	}
	for _, g := range m.Gaps {
		fmt.Fprintf(stdout, "  gap %s – %s (%s) %s\n", g.Start.Format("15:04:05.000"), g.End.Format("15:04:05.000"), g.End.Sub(g.Start).Round(time.Millisecond), g.Reason)
	}
	for _, w := range m.Warnings {
		fmt.Fprintf(stdout, "  warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "manifest: %s\n", manifestPath(*out))
	return 0
}

// parseWhen reads an RFC3339 time or a negative duration from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d <= 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC3339 time nor a duration before now (-10m)", s)
}

func manifestPath(out string) string { return strings.TrimSuffix(out, filepath.Ext(out)) + ".json" }

// exportToFile asks the server for the plan and the export of the range,
// writes the file (through a temporary name, renamed only once the
// server's digest trailer matches what arrived) and the manifest.
func exportToFile(ctx context.Context, cfg *config.Config, server, camera string, from, to time.Time, out string) (*Manifest, error) {
	base, err := serverBase(cfg, server)
	if err != nil {
		return nil, err
	}
	client, auth, err := apiClient(cfg)
	if err != nil {
		return nil, err
	}
	q := url.Values{"camera": {camera}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}.Encode()
	get := func(route string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+route+"?"+q, nil)
		if err != nil {
			return nil, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("ask %s: %w", base, err)
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			var e struct {
				Error string `json:"error"`
			}
			json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e) //nolint:errcheck // the status says enough
			return nil, fmt.Errorf("%s %s: %s %s", base, route, resp.Status, e.Error)
		}
		return resp, nil
	}

	resp, err := get(export.RoutePlan)
	if err != nil {
		return nil, err
	}
	var plan export.Plan
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&plan)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}

	resp, err = get(export.RouteExport)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := &Manifest{Camera: camera, From: from.UTC(), To: to.UTC(), File: filepath.Base(out), Server: base,
		Pieces: plan.Pieces, Gaps: []export.Gap{}, Warnings: plan.Warnings}
	if err := json.Unmarshal([]byte(resp.Header.Get(export.GapsHeader)), &m.Gaps); err != nil {
		return nil, fmt.Errorf("bad %s header: %w", export.GapsHeader, err)
	}
	tmp := out + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp) // a no-op once renamed
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("download export: %w", err)
	}
	if e := resp.Trailer.Get(export.ErrorTrailer); e != "" {
		return nil, fmt.Errorf("the server stopped the export early: %s", e)
	}
	m.Bytes, m.SHA256 = n, hex.EncodeToString(sum.Sum(nil))
	if want := resp.Trailer.Get(export.DigestTrailer); want != m.SHA256 {
		return nil, fmt.Errorf("digest mismatch: received %s, server sent %q: the file was damaged in transit", m.SHA256, want)
	}
	m.ExportedAt = time.Now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(manifestPath(out), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return m, nil
}

// serverBase is the URL of the server to ask: -server, else this config's
// own HTTP address (a wildcard bind is asked on loopback).
func serverBase(cfg *config.Config, server string) (string, error) {
	scheme := "http"
	if cfg.HTTP.CertFile != "" {
		scheme = "https"
	}
	if server == "" {
		server = cfg.Listen.HTTP
		host, port, err := net.SplitHostPort(server)
		if err != nil {
			return "", fmt.Errorf("%s: [listen] http %q: %w", cfg.File, server, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			server = net.JoinHostPort("127.0.0.1", port)
		}
	}
	if strings.Contains(server, "://") {
		return strings.TrimRight(server, "/"), nil
	}
	return scheme + "://" + server, nil
}

// apiClient is a client trusting the site's CA, and the Authorization the
// config grants: its token_file's API token, else the peer token derived
// from the gossip key (users_file holds only password hashes).
func apiClient(cfg *config.Config) (*http.Client, string, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	roots, err := config.SiteRoots(cfg.HTTP.CAFile)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", cfg.File, err)
	}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	client := &http.Client{Transport: tr}
	if cfg.HTTP.TokenFile != "" {
		b, err := os.ReadFile(cfg.HTTP.TokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("read token_file: %w", err)
		}
		return client, "Bearer " + strings.TrimSpace(string(b)), nil
	}
	if len(cfg.GossipKey) > 0 {
		return client, "Bearer " + web.PeerToken(cfg.GossipKey), nil
	}
	return client, "", nil
}
