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
	"github.com/buddyrec/buddyrec/storage"
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
	syncMethod := fs.String("sync-method", string(storage.SyncAuto), "[storage] sync_method of the supervisor: auto, io_uring or fdatasync")
	// The storage settings come from the supervisor as it runs them, not
	// from the config file (see worker.PoolOptions).
	server := fs.String("server", "", "the server's name (config name)")
	dataDir := fs.String("data-dir", "", "the server's data_dir")
	segment := fs.Duration("segment", 0, "[storage] segment")
	part := fs.Duration("part", 0, "[storage] part")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *socket == "" || *id <= 0 || *server == "" || *dataDir == "" || *segment <= 0 || *part <= 0 {
		fmt.Fprintln(stderr, "buddyrec worker: -id, -socket, -server, -data-dir, -segment and -part are required (the supervisor starts workers; see `buddyrec run`)")
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "buddyrec worker: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})).With("server", *server, "worker", *id, "pid", os.Getpid())
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
	if err := worker.RunWorker(ctx, worker.WorkerOptions{Server: *server, DataDir: *dataDir, Segment: *segment, Part: *part, ID: *id, Socket: *socket, StandbyWindow: *standby, SyncMethod: storage.SyncMethod(*syncMethod), Logger: log}); err != nil {
		log.Error("worker stopped with an error", "err", err)
		return 1
	}
	log.Info("worker stopped")
	return 0
}
