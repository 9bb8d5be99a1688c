package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/internal/sdnotify"
	"github.com/buddyrec/buddyrec/node"
)

// stopper turns what stops a running server — SIGTERM or SIGINT, or a
// restart asked from the page — into a clean stop: the node first hands
// its cameras to its buddies (make-before-break, bounded by [cluster]
// drain_timeout), then Run closes the open segments and leaves the
// cluster, so peers see the server as "left", not dead, and raise no
// server.down alarm. A second signal, or the timeout, cuts the drain
// short: the stop goes on at once.
//
// It keeps its own signal channel (SIGHUP belongs to reload), so the two
// never steal each other's signals.
type stopper struct {
	log     *slog.Logger
	notify  *sdnotify.Notifier
	timeout time.Duration

	sigs    chan os.Signal
	restart chan string
	asked   atomic.Bool // a stop or restart has begun
	again   atomic.Bool // the process is to re-exec once Run returns

	// ctx is Run's context: it ends once the drain is over.
	ctx    context.Context
	cancel context.CancelFunc
}

func newStopper(log *slog.Logger, notify *sdnotify.Notifier, timeout time.Duration) *stopper {
	s := &stopper{log: log, notify: notify, timeout: timeout, sigs: make(chan os.Signal, 2), restart: make(chan string, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.sigs, os.Interrupt, syscall.SIGTERM)
	return s
}

// close stops listening for signals.
func (s *stopper) close() {
	signal.Stop(s.sigs)
	s.cancel()
}

// Restart asks for a drain, a stop and a re-exec of the binary; it
// returns at once.
func (s *stopper) Restart(by string) error {
	if s.asked.Load() {
		return errors.New("this server is already stopping")
	}
	select {
	case s.restart <- by:
		return nil
	default:
		return errors.New("a restart is already under way")
	}
}

// run waits for a stop or a restart, drains n, then ends Run's context.
func (s *stopper) run(n *node.Node) {
	var why string
	select {
	case sig := <-s.sigs:
		why = sig.String()
	case by := <-s.restart:
		s.again.Store(true)
		why = "restart asked by " + by
	case <-s.ctx.Done():
		return
	}
	s.asked.Store(true)
	if s.again.Load() {
		// The process stays (same PID, re-exec): the service manager sees
		// a reload, then READY=1 from the new image once it records.
		s.notify.Reloading()
	} else {
		s.notify.Stopping()
	}
	s.log.Info("stopping cleanly", "why", why, "drain_timeout", s.timeout)
	dctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	go func() {
		select {
		case sig := <-s.sigs:
			s.log.Warn("second signal: stopping at once, without waiting for the handover", "signal", sig.String())
			cancel()
		case <-dctx.Done():
		}
	}()
	if s.timeout > 0 {
		n.DrainForStop(dctx)
	}
	s.cancel()
}

// reExec replaces this process with a fresh start of the same binary and
// arguments (the page's Restart). The PID stays, so systemd's Type=notify
// unit keeps tracking it; every descriptor is close-on-exec, so the ports
// and data_dir's lock are free for the new image. It returns only when
// the exec failed, and the caller exits non-zero: systemd's
// Restart=on-failure then starts the server again.
func reExec() error {
	exe, err := os.Executable()
	if err == nil {
		if _, serr := os.Stat(exe); serr != nil {
			err = serr // replaced by an upgrade: find it by name again
		}
	}
	if err != nil {
		if exe, err = exec.LookPath(os.Args[0]); err != nil {
			return fmt.Errorf("find the buddyrec binary to restart: %w", err)
		}
	}
	return syscall.Exec(exe, os.Args, os.Environ())
}
