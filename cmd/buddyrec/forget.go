package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/node"
	"github.com/buddyrec/buddyrec/web"
)

// cmdForget clears the node key a server pinned for another server (see
// README, "Replacing a server"). It asks the running server through its
// API, authenticated with the token every server derives from the gossip
// key, because a running server holds cluster.db's lock; when the server
// is not running it edits data_dir/cluster.db itself.
func cmdForget(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, code := loadConfig(fs, args, stderr)
	if cfg == nil {
		return code
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		fmt.Fprintln(stderr, "usage: buddyrec forget -config FILE NAME   (NAME: the server whose pinned node key to clear)")
		return 2
	}
	name := fs.Arg(0)
	if name == cfg.Name {
		fmt.Fprintf(stderr, "buddyrec forget: %s is this server (%s); run forget on the other servers of the site\n", name, cfg.File)
		return 2
	}
	had, err := forgetOnline(cfg, name)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Not running: nothing holds the lock, edit the file.
		had, err = buddy.ForgetPin(cfg.DataDir, name)
		if err == nil {
			fmt.Fprintf(stdout, "%s (not running): ", cfg.Name)
		}
	} else if err == nil {
		fmt.Fprintf(stdout, "%s: ", cfg.Name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "buddyrec forget: %v\n", err)
		return 1
	}
	if had {
		fmt.Fprintf(stdout, "forgot the node key pinned for %s; the next record it signs pins its key anew\n", name)
	} else {
		fmt.Fprintf(stdout, "no node key was pinned for %s; the next record it signs pins its key\n", name)
	}
	return 0
}

func forgetOnline(cfg *config.Config, name string) (bool, error) {
	host, port, err := net.SplitHostPort(cfg.Listen.HTTP)
	if err != nil {
		return false, fmt.Errorf("listen.http %q: %w", cfg.Listen.HTTP, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.HTTP.CertFile != "" {
		scheme = "https"
		roots, err := config.SiteRoots(cfg.HTTP.CAFile)
		if err != nil {
			return false, fmt.Errorf("%s: %w", cfg.File, err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(node.ForgetRequest{Server: name})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := scheme + "://" + net.JoinHostPort(host, port) + "/api/v1/cluster/forget"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(cfg.GossipKey) > 0 {
		req.Header.Set("Authorization", "Bearer "+web.PeerToken(cfg.GossipKey))
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("ask %s at %s: %w", cfg.Name, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s at %s answered %s: %s", cfg.Name, url, resp.Status, strings.TrimSpace(string(b)))
	}
	var res node.ForgetResult
	if err := json.Unmarshal(b, &res); err != nil {
		return false, fmt.Errorf("%s at %s: bad answer: %w", cfg.Name, url, err)
	}
	return res.HadPin, nil
}
