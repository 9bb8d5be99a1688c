package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/webhook"
)

// psimTargetName names the config's [[psim]] tables psim1, psim2, ... as the
// server does, so messages and metrics agree.
func psimTargetName(i int) string { return fmt.Sprintf("psim%d", i+1) }

func cmdWebhook(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: buddyrec webhook test -config FILE")
		return 2
	}
	cfg, code := loadConfig(flag.NewFlagSet("webhook test", flag.ContinueOnError), args[1:], stderr)
	if cfg == nil {
		return code
	}
	if len(cfg.PSIM) == 0 {
		fmt.Fprintf(stderr, "%s has no [[psim]] targets\n", cfg.File)
		return 1
	}
	var targets []webhook.Target
	for i, p := range cfg.PSIM {
		targets = append(targets, webhook.Target{Name: psimTargetName(i), URL: p.URL, Secret: p.Secret, Events: p.Events})
	}
	roots, err := config.SiteRoots(cfg.HTTP.CAFile)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cfg.File, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := 0
	for _, r := range webhook.SendTest(ctx, webhook.Client(roots), targets, cfg.Name) {
		if r.OK() {
			fmt.Fprintf(stdout, "%s %s: OK, HTTP %d in %s (webhook-id %s)\n", r.Target, r.URL, r.Status, r.Latency.Round(time.Millisecond), r.ID)
		} else {
			failed++
			fmt.Fprintf(stdout, "%s %s: FAILED: %s\n", r.Target, r.URL, r.Err)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}
