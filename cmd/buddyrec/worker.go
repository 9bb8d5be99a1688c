package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/buddyrec/buddyrec/internal/profsock"
	"github.com/buddyrec/buddyrec/worker"
)

// cmdWorker is the hidden `buddyrec worker` command: one worker process of
// a supervisor (`buddyrec run` with [recorder] cameras_per_worker > 0). It
// is not for people: the supervisor starts it, in its own session, and
// talks to it over -socket.
func cmdWorker(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.Int("id", 0, "worker number (given by the supervisor)")
	socket := fs.String("socket", "", "Unix socket to serve the supervisor on")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	standby := fs.Duration("standby-window", 0, "how far back a hot standby's ring reaches (the supervisor computes it)")
	cfg, code := loadConfig(fs, args, stderr)
	if cfg == nil {
		return code
	}
	if *socket == "" || *id <= 0 {
		fmt.Fprintln(stderr, "buddyrec worker: -id and -socket are required (the supervisor starts workers; see `buddyrec run`)")
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "buddyrec worker: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})).With("server", cfg.Name, "worker", *id, "pid", os.Getpid())
	// SIGPIPE is ignored: the log is a file, but a supervisor's pipe must
	// never kill a recorder. SIGTERM stops cleanly.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("worker started")
	// bench record -profile only: off unless its environment variable is set
	if _, err := profsock.ServeFromEnv(ctx, fmt.Sprintf("worker%d", *id)); err != nil {
		log.Warn("cannot serve the benchmark's profile socket", "err", err)
	}
	if err := worker.RunWorker(ctx, worker.WorkerOptions{Config: cfg, ID: *id, Socket: *socket, StandbyWindow: *standby, Logger: log}); err != nil {
		log.Error("worker stopped with an error", "err", err)
		return 1
	}
	log.Info("worker stopped")
	return 0
}
