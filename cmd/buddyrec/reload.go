package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/sdnotify"
	"github.com/buddyrec/buddyrec/node"
)

// notifyReloads catches SIGHUP from now on, so that a reload asked for
// while the server starts is not the default action (which ends the
// process); serveReloads acts on what it catches.
func notifyReloads() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// serveReloads reloads n's config on each SIGHUP until ctx ends (see
// node.Reload). It tells the service manager RELOADING=1, then READY=1
// once the reload is applied or refused, so that `systemctl reload`
// (ExecReload sends SIGHUP) returns when the reload is over; the
// outcome is in the log and the event log, and in `systemctl status`.
func serveReloads(ctx context.Context, hup <-chan os.Signal, n *node.Node, notify *sdnotify.Notifier, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if err := notify.Reloading(); err != nil {
			log.Warn("cannot notify the service manager", "err", err)
		}
		res, err := n.Reload(ctx)
		status := "reloaded " + res.ConfigHash
		switch {
		case errors.Is(err, node.ErrReloadRefused):
			status = fmt.Sprintf("config reload refused (%d problems, see the log); running config %s", len(res.Problems), res.ConfigHash)
		case err != nil:
			log.Warn("reload did not complete", "err", err)
			status = "reload did not complete: " + err.Error()
		}
		if err := notify.Ready(status); err != nil {
			log.Warn("cannot notify the service manager", "err", err)
		}
	}
}

// cmdReload asks the running server a config describes to reload it
// (POST /api/v1/reload), with the config's credentials. The config is
// checked here first: one with problems is reported and not sent, and
// the server keeps running what it runs.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, code := loadConfig(fs, args, stderr)
	if cfg == nil {
		if code == 1 {
			fmt.Fprintln(stderr, "buddyrec reload: not sent: the running server keeps its config")
		}
		return code
	}
	a, err := newServerAPI(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec reload:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status, body, err := a.post(ctx, "/api/v1/reload", nil)
	if err != nil {
		fmt.Fprintf(stderr, "buddyrec reload: %s (%s): %v\n", cfg.Name, a.base, err)
		return 1
	}
	var res api.Reload
	if status != http.StatusOK && status != http.StatusUnprocessableEntity || json.Unmarshal(body, &res) != nil {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			fmt.Fprintf(stderr, "buddyrec reload: %s (%s): %d %s\n", cfg.Name, a.base, status, e.Error)
		} else {
			fmt.Fprintf(stderr, "buddyrec reload: %s (%s): answered %d\n", cfg.Name, a.base, status)
		}
		return 1
	}
	if !res.Applied {
		for _, p := range res.Problems {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "buddyrec reload: %s refused the config (%d problems); it keeps running config %s\n", cfg.Name, len(res.Problems), res.ConfigHash)
		return 1
	}
	if res.Summary == "" {
		fmt.Fprintf(stdout, "%s: config %s reloaded; nothing changed\n", cfg.Name, res.ConfigHash)
	} else {
		fmt.Fprintf(stdout, "%s: config %s reloaded: %s\n", cfg.Name, res.ConfigHash, strings.TrimSpace(res.Summary))
	}
	return 0
}
