package connlimit

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Budget is the process's allowance of descriptors for accepted
// connections: limit minus reserve, less whatever else is open. Listeners
// share one Budget, so HTTP clients and RTSP viewers together can never take
// the reserve, which stays for camera sessions, segment files and gossip.
//
// Counting /proc/self/fd on every accept would cost a directory read per
// connection during a flood, so the count is refreshed at most every
// Options.Every and corrected in between by the connections the Budget
// itself handed out and took back.
type Budget struct {
	limit, reserve int
	count          func() (int, error)
	every          time.Duration
	now            func() time.Time

	mu    sync.Mutex
	base  int // descriptors open at the last count, less the one being admitted
	delta int // connections admitted minus released since the last count
	at    time.Time
}

// BudgetOptions configure a Budget.
type BudgetOptions struct {
	// Limit is the most descriptors the process may hold (RLIMIT_NOFILE).
	Limit int
	// Reserve is how many of them accepted connections may never take.
	Reserve int
	// Count returns the number of descriptors open now; nil counts the
	// entries of /proc/self/fd. Where counting fails, only the
	// connections admitted through the Budget are counted.
	Count func() (int, error)
	// Every is the most time between two counts (default 250ms).
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewBudget returns a Budget for o.
func NewBudget(o BudgetOptions) *Budget {
	b := &Budget{limit: o.Limit, reserve: o.Reserve, count: o.Count, every: o.Every, now: o.Now}
	if b.count == nil {
		b.count = OpenFiles
	}
	if b.every <= 0 {
		b.every = 250 * time.Millisecond
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// Limit and Reserve return the Budget's figures, for logs.
func (b *Budget) Limit() int   { return b.limit }
func (b *Budget) Reserve() int { return b.reserve }

// take admits one connection that is already open (its descriptor is
// counted by a fresh count), or reports false when it would leave fewer
// than the reserve free.
func (b *Budget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := b.now(); b.at.IsZero() || now.Sub(b.at) >= b.every {
		if n, err := b.count(); err == nil {
			b.base, b.delta, b.at = n-1, 0, now
		} else {
			b.at = now
		}
	}
	if b.base+b.delta+1 > b.limit-b.reserve {
		return false
	}
	b.delta++
	return true
}

// give takes back a connection admitted by take.
func (b *Budget) give() {
	b.mu.Lock()
	b.delta--
	b.mu.Unlock()
}

// OpenFiles counts this process's open descriptors (Linux /proc/self/fd).
func OpenFiles() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("count open files: %w", err)
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		n += len(names)
		if err != nil || len(names) == 0 {
			break
		}
	}
	return n - 1, nil // less the descriptor reading the directory
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the limit in force. A recorder holds a socket and a file per camera plus
// every client; the default soft limit (often 1024) is too low for a site.
func RaiseFileLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return int(min(rl.Cur, 1<<31-1)), fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", rl.Max, err)
		}
		rl = raised
	}
	return int(min(rl.Cur, 1<<31-1)), nil
}

// Reserve is the number of descriptors to keep from accepted connections
// on a process allowed limit of them that records up to cameras cameras:
// a socket, a segment file and slack for each camera, plus the stores and
// gossip, at least a quarter of the limit and at most half of it.
func Reserve(limit, cameras int) int {
	r := max(64+8*cameras, limit/4)
	return min(r, limit/2)
}
