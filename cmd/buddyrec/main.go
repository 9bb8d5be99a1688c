// Command buddyrec is the one binary of a buddyrec recording server.
//
//	buddyrec run -config FILE      record this server's cameras, join its buddies
//	buddyrec check -config FILE    report every problem in a config, or summarise it
//	buddyrec check a.toml b.toml   ... and check the site they make together
//	buddyrec keygen [-webhook]     print a new gossip key (or webhook secret)
//	buddyrec passwd USER           print a users_file line for USER
//	buddyrec webhook test -config FILE   send a signed test notice to each PSIM
//	buddyrec forget -config FILE NAME    clear the node key pinned for a replaced server
//	buddyrec reload -config FILE   re-read the config in the running server (as SIGHUP)
//	buddyrec export -config FILE -camera ID -from T -o F.mp4   export footage of the site
//	buddyrec drain|undrain -config FILE  maintenance: hand the cameras over, take them back
//	buddyrec plan -config FILE -fail rec-a   where cameras go if rec-a fails now
//	buddyrec demo [-chaos] [-keep] a whole local site on loopback
//	buddyrec bench record|failover|planner|live ...  benchmark figures
//	buddyrec version               which build this is (version, commit, build time)
//
// `buddyrec` without a command prints the usage, which lists them all.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/buildinfo"
	"github.com/buddyrec/buddyrec/internal/httpserver"
	"github.com/buddyrec/buddyrec/internal/profsock"
	"github.com/buddyrec/buddyrec/internal/sdnotify"
	"github.com/buddyrec/buddyrec/node"
	"github.com/buddyrec/buddyrec/web"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usage lists every command; the bench names come from benchmarks().
var usage = `usage: buddyrec <command> [flags]

commands:
  run -config FILE           record this server's cameras and join its buddies
  check -config FILE         validate a config: every problem with file:line, or a summary
  check FILE... | DIR        validate several servers' configs, then the site they make
  keygen [-webhook]          print a new gossip key (base64) or a webhook secret (whsec_...)
  passwd USER                read a password on stdin, print a users_file line (bcrypt)
  webhook test -config FILE  send a signed test notice to every [[psim]] target
  forget -config FILE NAME   clear the node key this server pinned for server NAME (a replaced server)
  drain -config FILE         maintenance: the running server hands its cameras to its buddies
                             (make-before-break), takes none, and stays so across restarts
  undrain -config FILE       end maintenance: the cameras come back the same way
  reload -config FILE        make the running server re-read its config (as SIGHUP does)
  export -config FILE -camera ID -from T [-to T] -o FILE.mp4
                             export footage of the site (file + JSON manifest, digest checked)
  plan -config FILE -fail rec-a[,rec-b]
                             where every camera would be recorded if those servers failed now
  demo [-chaos] [-keep]      run a whole local site: simulated cameras and three servers
  bench ` + benchNames() + `
                             print benchmark figures (see README)
  version                    print the version, commit, build time and Go version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "worker": // hidden: started by `run` (see worker.go)
		return cmdWorker(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "keygen":
		return cmdKeygen(args[1:], stdout, stderr)
	case "passwd":
		return cmdPasswd(args[1:], os.Stdin, stdout, stderr)
	case "webhook":
		return cmdWebhook(args[1:], stdout, stderr)
	case "forget":
		return cmdForget(args[1:], stdout, stderr)
	case "drain":
		return cmdDrain("drain", true)(args[1:], stdout, stderr)
	case "undrain":
		return cmdDrain("undrain", false)(args[1:], stdout, stderr)
	case "reload":
		return cmdReload(args[1:], stdout, stderr)
	case "plan":
		return cmdPlan(args[1:], stdout, stderr)
	case "export":
		return cmdExport(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprint(stdout, buildinfo.Read())
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "buddyrec: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func loadConfig(fs *flag.FlagSet, args []string, stderr io.Writer) (*config.Config, int) {
	path := fs.String("config", "", "path of this server's TOML config")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if *path == "" {
		fmt.Fprintf(stderr, "buddyrec %s: -config FILE is required\n", fs.Name())
		return nil, 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintf(stderr, "%d problem(s) in %s\n", len(ps), *path)
		} else {
			fmt.Fprintln(stderr, err)
		}
		return nil, 1
	}
	return cfg, 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this loopback address, for troubleshooting")
	cfg, code := loadConfig(fs, args, stderr)
	if cfg == nil {
		return code
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "buddyrec run: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})).With("server", cfg.Name)
	setSupervisorProcs(cfg.Recorder.CamerasPerWorker)
	// Under systemd (Type=notify) the service is "started" once recording
	// has; outside it the notifier does nothing.
	notify := sdnotify.FromEnv()
	// SIGTERM and SIGINT drain first, then stop (stop.go).
	stops := newStopper(log, notify)
	defer stops.close()
	ctx := stops.ctx
	// SIGHUP re-reads the config (reload.go).
	hup, stopHUP := notifyReloads()
	defer stopHUP()
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr); err != nil {
			log.Error("cannot serve profiles", "err", err)
			return 1
		}
	}
	// bench record -profile only: off unless its environment variable is set
	if _, err := profsock.ServeFromEnv(ctx, "server"); err != nil {
		log.Warn("cannot serve the benchmark's profile socket", "err", err)
	}
	n, err := node.New(node.Options{Config: cfg, Logger: log, Restart: stops.Restart, OnReady: func(status string) {
		log.Info("ready", "status", status)
		if err := notify.Ready(status); err != nil {
			log.Warn("cannot notify the service manager", "err", err)
		}
	}})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	go stops.run(n)
	if every := sdnotify.WatchdogInterval(); every > 0 && notify.Enabled() {
		go watchdog(ctx, notify, every/2, n)
	}
	go serveReloads(ctx, hup, n, notify, log)
	if err := n.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	if stops.again.Load() {
		stops.close()
		log.Info("restarting")
		err := reExec()
		log.Error("cannot restart; exiting for the service manager to start it again", "err", err)
		return 1
	}
	return 0
}

func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	webhookSecret := fs.Bool("webhook", false, "print a Standard Webhooks signing secret (whsec_...) instead of a gossip key")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		fmt.Fprintln(stderr, "buddyrec keygen:", err)
		return 1
	}
	if *webhookSecret {
		fmt.Fprintln(stdout, "whsec_"+base64.StdEncoding.EncodeToString(key))
	} else {
		fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	}
	return 0
}

// servePprof serves the Go profiler on a loopback address only: profiles
// reveal memory contents, so they never go on the site network.
func servePprof(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-pprof %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-pprof %s: only a loopback address is allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Profiles take as long as their ?seconds= asks: no write deadline.
	srv := httpserver.New(httpserver.LongResponse(mux), nil)
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return nil
}

// cmdPasswd prints a users_file line for the page and API: the password
// is read from standard input (one line) and only its bcrypt hash printed.
func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || strings.ContainsAny(args[0], ": \t") {
		fmt.Fprintln(stderr, "usage: echo PASSWORD | buddyrec passwd USER   (USER without ':' or spaces)")
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(stderr, "buddyrec passwd: no password on standard input")
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		fmt.Fprintln(stderr, "buddyrec passwd: the password must have at least 8 characters")
		return 1
	}
	hash, err := web.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec passwd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s:%s\n", args[0], hash)
	return 0
}

// watchdog pings the service manager's watchdog (WatchdogSec=) while the
// node answers: reading its cameras takes the node's and the recorder's
// locks, so a deadlock there stops the pings and systemd restarts the
// server (SIGABRT first, whose goroutine dump lands in the journal).
func watchdog(ctx context.Context, notify *sdnotify.Notifier, every time.Duration, n *node.Node) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n.Cameras()
		notify.WatchdogPing()
	}
}
