package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/buddyrec/buddyrec/internal/connlimit"
)

// Connection limits of the HTTP and live RTSP listeners. A browser opens
// up to 6 connections, a PSIM or a peer a few; 128 from one address leaves
// room for a control room behind one NAT address or a video wall decoder.
const (
	httpMaxConns    = 1024
	httpMaxPerHost  = 128
	rtspMaxConns    = 1024
	rtspMaxPerHost  = 128
	lockFileName    = "buddyrec.lock"
	defaultFileLimt = 1024
)

// fileBudget raises the soft descriptor limit to the hard one and returns
// the budget the HTTP and RTSP listeners share: accepted connections never
// take the reserve kept for cameras (a socket and a file each), the stores
// and gossip, so a camera that drops can always reconnect.
func fileBudget(cameras int, log *slog.Logger) *connlimit.Budget {
	limit, err := connlimit.RaiseFileLimit()
	if err != nil {
		log.Warn("descriptor limit", "err", err)
		if limit <= 0 {
			limit = defaultFileLimt
		}
	}
	reserve := connlimit.Reserve(limit, cameras)
	log.Info("descriptor limit", "limit", limit, "reserved_from_clients", reserve)
	return connlimit.NewBudget(connlimit.BudgetOptions{Limit: limit, Reserve: reserve})
}

// limitListener wraps ln with the connection limits of a listener serving
// name ("http", "rtsp").
func limitListener(ln net.Listener, name string, maxConns, perHost int, b *connlimit.Budget, log *slog.Logger) net.Listener {
	return connlimit.Wrap(ln, connlimit.Options{Name: name, MaxConns: maxConns, MaxPerHost: perHost, Budget: b,
		Logger: log.With("part", "connlimit")})
}

// dataDirLock is the lock held on data_dir for the process's life: two
// servers on one data_dir would write the same segment files and wait for
// each other's bolt files.
type dataDirLock struct{ f *os.File }

// lockDataDir takes data_dir's lock file (flock, released by the kernel
// when the process dies, so a kill -9 leaves no stale lock) and writes this
// process's pid in it, so the next one can say who holds it.
func lockDataDir(dir string) (*dataDirLock, error) {
	p := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data_dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil && pid > 0 {
				return nil, fmt.Errorf("data_dir %s is in use by another buddyrec (pid %d)", dir, pid)
			}
			return nil, fmt.Errorf("data_dir %s is in use by another buddyrec", dir)
		}
		return nil, fmt.Errorf("lock data_dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

// release unlocks data_dir (closing the file drops the flock).
func (l *dataDirLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
