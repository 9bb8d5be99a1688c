// Package boltfile keeps a bbolt file usable across file-system failures.
//
// A bbolt DB whose file went bad under it (ext4 remounted read-only after
// an error, a disk that dropped and came back, a revoked mapping) fails
// every transaction from then on: "database isn't correctly mapped", "bad
// file descriptor". Nothing in bbolt recovers from that but closing and
// opening the file again. A [File] notes the first failure of a
// transaction and reopens the file when its owner calls [File.Reopen]
// (each owner's maintenance round: the event log every second, the
// storage syncer every part, the webhook outbox every delivery pass), so
// a disk that comes back brings the index, the events and the notices
// back without a restart.
//
// Invariant: a transaction never runs on a DB that is being closed:
// transactions hold the file's lock for reading, Reopen and Close for
// writing.
package boltfile

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrLocked says another process holds the file.
var ErrLocked = errors.New("in use by another process")

// Options configure a File.
type Options struct {
	// Init runs in a write transaction after every open (the first and
	// each reopen): it creates the buckets the owner expects.
	Init func(*bolt.Tx) error
	// Bolt are the options passed to bolt.Open; Timeout defaults to 1 s,
	// so a file held by another process fails fast instead of hanging.
	Bolt bolt.Options
	// Own reports the errors a transaction function returns on purpose
	// (not found, a decode error of one record): they do not mark the
	// file broken. Nil counts every error as the file's.
	Own func(error) bool
}

// File is a bbolt DB that can be reopened after a failure. It is safe for
// concurrent use.
type File struct {
	path string
	opts Options

	mu     sync.RWMutex // guards db: held for reading by transactions
	db     *bolt.DB
	closed bool
	broken atomic.Bool
}

// Open opens (creating if needed) the bbolt file at path and runs Init.
func Open(path string, o Options) (*File, error) {
	if o.Bolt.Timeout == 0 {
		o.Bolt.Timeout = time.Second
	}
	f := &File{path: path, opts: o}
	db, err := f.open()
	if err != nil {
		return nil, err
	}
	f.db = db
	return f, nil
}

func (f *File) open() (*bolt.DB, error) {
	bo := f.opts.Bolt
	db, err := bolt.Open(f.path, 0o600, &bo)
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", f.path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", f.path, err)
	}
	if f.opts.Init != nil {
		if err := db.Update(f.opts.Init); err != nil {
			db.Close()
			return nil, fmt.Errorf("init %s: %w", f.path, err)
		}
	}
	return db, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Update runs fn in a read-write transaction.
func (f *File) Update(fn func(*bolt.Tx) error) error { return f.tx(true, fn) }

// View runs fn in a read-only transaction.
func (f *File) View(fn func(*bolt.Tx) error) error { return f.tx(false, fn) }

func (f *File) tx(write bool, fn func(*bolt.Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return fmt.Errorf("%s: %w", f.path, bolt.ErrDatabaseNotOpen)
	}
	var err error
	if write {
		err = f.db.Update(fn)
	} else {
		err = f.db.View(fn)
	}
	if err != nil && (f.opts.Own == nil || !f.opts.Own(err)) {
		f.broken.Store(true)
	}
	return err
}

// Broken says a transaction failed since the last (re)open: the file may
// need reopening.
func (f *File) Broken() bool { return f.broken.Load() }

// Reopen closes and opens the file again if a transaction failed since it
// was last opened; it reports whether it did. On error the file stays
// broken and the next Reopen tries again.
func (f *File) Reopen() (bool, error) {
	if !f.broken.Load() {
		return false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false, nil
	}
	f.db.Close() //nolint:errcheck // the file is broken; closing releases its lock and mapping
	db, err := f.open()
	if err != nil {
		// f.db stays the closed DB: transactions fail with
		// bolt.ErrDatabaseNotOpen until a later Reopen works.
		return false, err
	}
	f.db = db
	f.broken.Store(false)
	return true, nil
}

// Size is the file's size as bbolt maps it, or 0 when unknown.
func (f *File) Size() int64 {
	var n int64
	_ = f.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Close closes the file. After Close every transaction fails.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.db.Close()
	if err != nil && f.broken.Load() {
		return nil // a broken file's close error says nothing new
	}
	return err
}
