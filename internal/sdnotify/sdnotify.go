// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): newline-separated KEY=VALUE assignments sent as one
// datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. A service with
// Type=notify is "started" only once it sends READY=1, so `systemctl start`
// and units ordered after buddyrec wait until recording has begun.
//
// The protocol is small enough that a dependency would cost more than it
// saves; this follows the reference implementation in
// systemd/src/libsystemd/sd-daemon/sd-daemon.c: a leading '@' names an
// abstract socket, and a Notifier without a socket (not run by systemd)
// does nothing, so callers never need to ask.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Assignments a service sends; see sd_notify(3).
const (
	// Ready: start-up finished (Type=notify) or a reload finished.
	Ready = "READY=1"
	// Reloading: the service is reloading its configuration; it must send
	// Ready again when done. systemd ≥ 253 wants MONOTONIC_USEC beside it,
	// which Reloading adds.
	Reloading = "RELOADING=1"
	// Stopping: the service began its shutdown.
	Stopping = "STOPPING=1"
	// Watchdog: keep-alive ping for WatchdogSec=.
	Watchdog = "WATCHDOG=1"
)

// Notifier sends notifications to the service manager. The zero value
// and nil are valid and send nothing.
type Notifier struct {
	socket string // "" when not run under a notify-aware manager
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET (empty: a no-op Notifier).
// It does not unset the variable: worker processes inherit it, and
// systemd ignores their messages unless NotifyAccess=all.
func FromEnv() *Notifier {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// New returns a Notifier for the socket path (an abstract name when it
// starts with '@'); an empty path gives a no-op Notifier.
func New(socket string) *Notifier { return &Notifier{socket: socket} }

// Enabled tells whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Send sends the assignments as one datagram. Each must be KEY=VALUE
// without a newline.
func (n *Notifier) Send(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.ContainsRune(a, '\n') {
			return fmt.Errorf("sd_notify: malformed assignment %q", a)
		}
	}
	if n.socket[0] != '/' && n.socket[0] != '@' {
		// sd-daemon.c also accepts vsock:, which a recorder never runs under.
		return fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET %q", n.socket)
	}
	// Go maps a leading '@' to the abstract namespace itself.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready reports that start-up (or a reload) finished; status is shown by
// `systemctl status` (empty: none).
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Send(Ready)
	}
	return n.Send(Ready, "STATUS="+oneLine(status))
}

// Reloading reports that a configuration reload began. Send Ready when it
// has been applied (or refused).
func (n *Notifier) Reloading() error {
	return n.Send(Reloading, "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping reports that shutdown began.
func (n *Notifier) Stopping() error { return n.Send(Stopping) }

// Status sets the free-form status line of `systemctl status`.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + oneLine(status)) }

// WatchdogPing tells the manager the service is alive.
func (n *Notifier) WatchdogPing() error { return n.Send(Watchdog) }

// WatchdogInterval returns the watchdog timeout the manager set for this
// process ($WATCHDOG_USEC, honouring $WATCHDOG_PID), or 0 when there is
// none. Ping at half of it, as sd_watchdog_enabled(3) advises.
func WatchdogInterval() time.Duration {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) time.Duration {
	if usec == "" {
		return 0
	}
	u, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || u <= 0 {
		return 0
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p != self {
			return 0 // meant for another process (e.g. our parent)
		}
	}
	return time.Duration(u) * time.Microsecond
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC against.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1e6 + ts.Nsec/1e3
}
