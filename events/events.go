// Package events keeps the site's event log (server down, failover started,
// camera offline, disk full, ...) in its own bbolt file so that technicians
// can page through what happened, acknowledge alarms, and so that the log
// survives restarts and crashes. Events older than the retention are pruned.
package events

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/buddyrec/buddyrec/internal/boltfile"
)

// Severity says how much attention an event needs. The values are the
// wire strings of the API and the status page.
type Severity string

// Severities. Alarms are what an operator must acknowledge.
const (
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeverityAlarm   Severity = "alarm"
)

// Type names what happened, as a dotted "subject.what" string; it is the
// "type" of the event in the API and of the PSIM notice in webhooks, so
// its values are part of the API and never change.
type Type string

// Event types raised by buddyrec. The log accepts any dotted name; these
// are every type the product raises, in one place.
const (
	TypeServerDown        Type = "server.down"
	TypeServerUp          Type = "server.up"
	TypeFailoverStarted   Type = "failover.started"
	TypeFailoverCompleted Type = "failover.completed"
	TypeFailbackCompleted Type = "failback.completed"
	// TypeFailoverNoCredentials: this server should record cameras of a
	// failed home but never received their credentials.
	TypeFailoverNoCredentials Type = "failover.no_credentials"
	TypeCapacityExceeded      Type = "capacity.exceeded"
	TypeCameraOffline         Type = "camera.offline"
	TypeCameraOnline          Type = "camera.online"
	TypeCameraAuthFailed      Type = "camera.auth_failed"
	TypeRecordingStalled      Type = "recording.stalled"
	TypeDiskLow               Type = "disk.low"
	TypeDiskFull              Type = "disk.full"
	TypeStorageWriteError     Type = "storage.write_error"
	// TypeStorageRecovered: segment writes succeed again after a failure.
	TypeStorageRecovered Type = "storage.recovered"
	// TypeStorageRecovery: crash recovery at start repaired the index or
	// files; an alarm only when footage was cut.
	TypeStorageRecovery   Type = "storage.recovery"
	TypeConfigMismatch    Type = "config.mismatch"
	TypeGossipKeyMismatch Type = "gossip.key_mismatch"
	// TypeWebhookDisabled: a PSIM target answered in a way that retrying
	// cannot fix (for example 410 Gone) and is no longer sent to.
	TypeWebhookDisabled Type = "webhook.disabled"
	// TypeWebhookGaveUp: a notice could not be delivered within the
	// outbox's give-up age and was dropped for that target.
	TypeWebhookGaveUp Type = "webhook.gave_up"
	// TypeFailoverReleased: an adopted camera named in a takeover notice is
	// no longer recorded by the adopter (displaced, moved on).
	TypeFailoverReleased Type = "failover.released"
	// TypeCapacityRestored: cameras a capacity.exceeded named are recorded
	// again; it resolves that alarm.
	TypeCapacityRestored Type = "capacity.restored"
	// TypeAlarmResolved is the generic event that resolves an alarm whose
	// condition has no paired type (a down server that stayed up): it
	// carries the conditions in Resolves.
	TypeAlarmResolved Type = "alarm.resolved"
	// TypeStandbyUnavailable: a camera refused a buddy's standby session
	// (stream limit, 453/503, credentials): its failover is cold.
	TypeStandbyUnavailable Type = "standby.unavailable"
	// TypeStandbyAvailable: the standby session works again, or is no
	// longer held; it resolves standby.unavailable.
	TypeStandbyAvailable Type = "standby.available"
	// TypeBackfillCompleted: this server copied back everything one peer
	// held of its cameras that it lacked (archive consolidation); one per
	// peer and episode.
	TypeBackfillCompleted Type = "backfill.completed"
	// TypeConfigReloaded: a reload applied the config file (info); it
	// resolves the last config.reload_failed.
	TypeConfigReloaded Type = "config.reloaded"
	// TypeConfigReloadFailed: a reload was refused and the running config
	// stays in force; the text lists the problems.
	TypeConfigReloadFailed Type = "config.reload_failed"

	// What peers say in gossip, and their clocks.

	// TypeGossipForgedRecord: a record or secrets signed by another key
	// than the one pinned for their server (a member speaking for
	// another, or a replaced server: `buddyrec forget`).
	TypeGossipForgedRecord Type = "gossip.forged_record"
	// TypeGossipBadRecord: a record refused for what it says (unsigned,
	// version out of range, a body naming another server).
	TypeGossipBadRecord Type = "gossip.bad_record"
	// TypeGossipPinForgotten: the node key pinned for a server was
	// cleared (`buddyrec forget`), so a replaced server is taken again.
	TypeGossipPinForgotten Type = "gossip.pin_forgotten"
	// TypeServerNameConflict: another server uses this server's name.
	TypeServerNameConflict Type = "server.name_conflict"
	// TypeServerForgotten: a server gone longer than forget_after was
	// forgotten.
	TypeServerForgotten Type = "server.forgotten"
	// TypeClockSkew: a peer's clock is off from this server's; TypeClockOK
	// clears it.
	TypeClockSkew Type = "clock.skew"
	TypeClockOK   Type = "clock.ok"

	// Worker process events (issue 15): a worker that recorded some of
	// this server's cameras exited, hung, used too much memory, or was
	// replaced; only its cameras were affected.
	TypeWorkerRestarted Type = "worker.restarted"
	TypeWorkerHung      Type = "worker.hung"
	TypeWorkerMemory    Type = "worker.memory"
	// TypeWorkerIsolated: a shared worker kept crashing and its cameras
	// were split into workers of their own.
	TypeWorkerIsolated Type = "worker.isolated"
	// TypeWorkerCrashLoop: a camera alone in its worker keeps crashing it;
	// the alarm names the camera.
	TypeWorkerCrashLoop Type = "worker.crash_loop"
	TypeWorkerUpgraded  Type = "worker.upgraded"
	// TypeWorkerRegrouped: a camera split out by a crash loop recorded
	// alone without a failure long enough to share a worker again.
	TypeWorkerRegrouped Type = "worker.regrouped"
)

// DefaultRetention is how long events are kept when Options.Retention is 0.
const DefaultRetention = 10 * 24 * time.Hour

// ErrNotFound is returned by Ack and Get for an id that is not in the log
// (never existed, malformed, or already pruned).
var ErrNotFound = errors.New("event not found")

var (
	bucketEvents = []byte("events")
	// bucketOpen maps an alarm condition to the keys of its unresolved
	// alarms (JSON list), so resolving does not scan the log.
	bucketOpen = []byte("open")
)

// Event is one entry of the log. ID and Time are assigned by Append when
// empty; IDs sort in time order, so they double as paging cursors.
type Event struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Type     Type      `json:"type"`
	Severity Severity  `json:"severity"`
	Server   string    `json:"server,omitempty"`
	Cameras  []string  `json:"cameras,omitempty"`
	Text     string    `json:"text,omitempty"`
	Acked    bool      `json:"acked"`
	AckedAt  time.Time `json:"acked_at,omitzero"`
	AckedBy  string    `json:"acked_by,omitempty"`
	// Condition, on an alarm, names the condition it reports (for example
	// "camera/rec-a/lobby"), so that a later event can resolve it.
	Condition string `json:"condition,omitempty"`
	// Resolves, on any event, lists the conditions it clears: Append marks
	// every unresolved alarm with one of them resolved by this event.
	Resolves []string `json:"resolves,omitempty"`
	// ResolvedAt and ResolvedBy (the resolving event's id) are set on an
	// alarm once its condition cleared. A resolved alarm stays in the log
	// and can still be acknowledged.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
}

// Options tune a Log. The zero value is usable.
type Options struct {
	// Retention is how long events are kept; 0 means DefaultRetention.
	Retention time.Duration
	// PruneInterval is how often Run prunes; 0 means one hour.
	PruneInterval time.Duration
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests pass a fake clock.
	Now func() time.Time
	// Reserve is the size of the file kept beside the log whose space is
	// given back when the disk is full, so that alarms are still written;
	// 0 means DefaultReserve, negative none.
	Reserve int64

	// openFile, when set, opens the bolt file (tests inject failures).
	openFile func(string, int, os.FileMode) (*os.File, error)
}

// DefaultReserve holds some thousands of events.
const DefaultReserve = 1 << 20

// maxPending bounds the events held in memory while the file cannot take
// them.
const maxPending = 10000

// Log is the event log. It is safe for concurrent use.
type Log struct {
	db   *boltfile.File // reopened by Maintain after a failure
	opts Options

	path      string
	retention time.Duration
	interval  time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	// pending holds events accepted while the file could not take them,
	// in key order; they are written as soon as it can.
	pending []Event
	memSeq  uint32        // sequence of in-memory keys (above any on-disk one)
	failing bool          // one log line per failure streak
	done    chan struct{} // closed by Close: ends Run
}

type subscriber struct {
	ch chan Event
}

// Open opens (creating if needed) the event log at path. It gives up after
// one second if another process holds the file, instead of hanging.
func Open(path string, o Options) (*Log, error) {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve
	}
	db, err := openDB(path, o)
	if err != nil {
		return nil, err
	}
	l := &Log{
		db:        db,
		opts:      o,
		path:      path,
		retention: o.Retention,
		interval:  o.PruneInterval,
		log:       o.Logger,
		now:       o.Now,
		subs:      make(map[*subscriber]struct{}),
		done:      make(chan struct{}),
	}
	l.ensureReserve()
	return l, nil
}

func openDB(path string, o Options) (*boltfile.File, error) {
	db, err := boltfile.Open(path, boltfile.Options{
		Bolt: bolt.Options{OpenFile: o.openFile},
		Init: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketEvents); err != nil {
				return err
			}
			_, err := tx.CreateBucketIfNotExists(bucketOpen)
			return err
		},
		// The callers' own errors, such as ErrNotFound, are not the file's.
		Own: func(err error) bool {
			var own errOwn
			return errors.As(err, &own) || errors.Is(err, ErrNotFound)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	return db, nil
}

// update and view run a transaction on the current file; a failure marks
// the file for reopening (a remount, a revoked mapping), except the
// callers' own errors such as ErrNotFound.
func (l *Log) update(fn func(*bolt.Tx) error) error { return l.db.Update(fn) }
func (l *Log) view(fn func(*bolt.Tx) error) error   { return l.db.View(fn) }

// errOwn wraps errors a transaction function returns on purpose, so they
// do not count as a broken file.
type errOwn struct{ error }

func (e errOwn) Unwrap() error { return e.error }

// reservePath is the file whose space the log gives back on a full disk.
func (l *Log) reservePath() string { return l.path + ".reserve" }

// ensureReserve creates the reserve file if it is missing and the disk
// has room (written and synced, so the blocks really are allocated).
func (l *Log) ensureReserve() {
	if l.opts.Reserve < 0 {
		return
	}
	p := l.reservePath()
	if fi, err := os.Stat(p); err == nil && fi.Size() >= l.opts.Reserve {
		return
	}
	err := func() error {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(make([]byte, l.opts.Reserve))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}()
	if err != nil {
		os.Remove(p)
		l.log.Debug("event log reserve not made", "err", err)
	}
}

// releaseReserve gives the reserve's space back; false if there was none.
func (l *Log) releaseReserve() bool {
	if l.opts.Reserve < 0 {
		return false
	}
	if err := os.Remove(l.reservePath()); err != nil {
		return false
	}
	l.log.Warn("disk full: event log released its reserve to keep writing alarms", "path", l.reservePath())
	return true
}

// Maintain reopens the file after a failure, writes the events held in
// memory and restores the reserve. Run calls it every second; it is
// exported for tests and for callers that do not use Run.
func (l *Log) Maintain() {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return
	}
	if reopened, err := l.db.Reopen(); err != nil {
		l.log.Debug("event log still unavailable", "err", err)
		return
	} else if reopened {
		l.log.Info("event log reopened after a failure", "path", l.path)
	}
	if l.flushPending() == nil {
		l.ensureReserve()
	}
}

// flushPending writes the events held in memory, in one transaction.
func (l *Log) flushPending() error {
	l.mu.Lock()
	batch := append([]Event(nil), l.pending...)
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	write := func() error {
		return l.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			for _, e := range batch {
				k, _ := parseID(e.ID)
				v, err := json.Marshal(e)
				if err != nil {
					return errOwn{err}
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
				if err := applyConditions(tx, b, k, e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := write()
	if err != nil && isDiskFull(err) && l.releaseReserve() {
		err = write()
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	// Acks given meanwhile changed events still pending: keep those.
	n := 0
	for i := range batch {
		if i < len(l.pending) && l.pending[i].Acked != batch[i].Acked {
			break
		}
		n++
	}
	l.pending = l.pending[n:]
	if len(l.pending) == 0 {
		l.pending = nil
	}
	wasFailing := l.failing
	l.failing = false
	l.mu.Unlock()
	if wasFailing {
		l.log.Info("event log writes again; events held in memory are on disk", "count", n)
	}
	return nil
}

// hold keeps e in memory until the file takes it.
func (l *Log) hold(e Event, cause error) Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.memSeq++
	e.ID = hex.EncodeToString(makeKey(e.Time, 1<<31|l.memSeq))
	if len(l.pending) >= maxPending {
		// Keep alarms: drop the oldest event that is not one.
		drop := 0
		for i, p := range l.pending {
			if p.Severity != SeverityAlarm {
				drop = i
				break
			}
		}
		l.pending = append(l.pending[:drop], l.pending[drop+1:]...)
	}
	l.pending = append(l.pending, e)
	sort.Slice(l.pending, func(i, j int) bool { return l.pending[i].ID < l.pending[j].ID })
	if !l.failing {
		l.failing = true
		l.log.Error("event log cannot write; events are kept in memory and written when it can", "path", l.path, "err", cause)
	}
	return e
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Close ends Run and every subscription and closes the file. It is
// idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	for s := range l.subs {
		close(s.ch)
		delete(l.subs, s)
	}
	l.mu.Unlock()
	ferr := l.flushPending()
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close event log %s: %w", l.path, err)
	}
	if ferr != nil {
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		return fmt.Errorf("close event log %s: %d events could not be written: %w", l.path, n, ferr)
	}
	return nil
}

// key layout: 8 bytes big-endian UnixNano of Event.Time, then 4 bytes
// big-endian sequence so that events of the same nanosecond keep their
// order. Byte order equals time order, which makes since/before/prune
// plain cursor walks. The ID is the key in hex.
const keyLen = 12

func makeKey(t time.Time, seq uint32) []byte {
	k := make([]byte, keyLen)
	binary.BigEndian.PutUint64(k[:8], uint64(t.UnixNano()))
	binary.BigEndian.PutUint32(k[8:], seq)
	return k
}

func parseID(id string) ([]byte, bool) {
	if len(id) != 2*keyLen {
		return nil, false
	}
	k, err := hex.DecodeString(id)
	if err != nil {
		return nil, false
	}
	return k, true
}

func timeKey(t time.Time) []byte { return makeKey(t, 0) }

// Append stores e and returns it with ID and Time filled in. When the
// file cannot take it (a full disk even after the reserve was given back,
// a file system remounted read-only) the event is held in memory, listed
// and published all the same, and written by Maintain once the file can
// take it: an alarm is never lost to the disk it reports on. A zero Time
// becomes now; an empty Severity becomes "info". Text is scrubbed of
// credentials in URLs even though callers are expected to pass redacted text.
func (l *Log) Append(e Event) (Event, error) {
	if e.Type == "" {
		return Event{}, errors.New("append event: empty type")
	}
	switch e.Severity {
	case "":
		e.Severity = SeverityInfo
	case SeverityInfo, SeverityWarning, SeverityAlarm:
	default:
		return Event{}, fmt.Errorf("append event %s: unknown severity %q", e.Type, e.Severity)
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	e.Text = Scrub(e.Text)
	e.Acked, e.AckedAt, e.AckedBy = false, time.Time{}, ""
	e.ResolvedAt, e.ResolvedBy = time.Time{}, ""
	if e.Severity != SeverityAlarm {
		e.Condition = ""
	}
	if e.Time.UnixNano() < 0 {
		return Event{}, fmt.Errorf("append event %s: time %s before 1970", e.Type, e.Time)
	}
	l.mu.Lock()
	behind := len(l.pending) > 0
	l.mu.Unlock()
	if behind {
		l.flushPending() //nolint:errcheck // held events stay held
	}
	put := func() error {
		return l.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			// The sequence is the position after the last event of the same
			// nanosecond, so IDs stay unique and ordered across restarts.
			last := makeKey(e.Time, ^uint32(0))
			var seq uint32
			c := b.Cursor()
			k, _ := c.Seek(last)
			switch {
			case k == nil:
				k, _ = c.Last()
			case bytes.Equal(k, last):
				return errOwn{errors.New("too many events in one nanosecond")}
			default:
				k, _ = c.Prev()
			}
			if k != nil && bytes.Equal(k[:8], last[:8]) {
				seq = binary.BigEndian.Uint32(k[8:]) + 1
			}
			key := makeKey(e.Time, seq)
			e.ID = hex.EncodeToString(key)
			v, err := json.Marshal(e)
			if err != nil {
				return errOwn{err}
			}
			if err := b.Put(key, v); err != nil {
				return err
			}
			return applyConditions(tx, b, key, e)
		})
	}
	err := put()
	if err != nil && isDiskFull(err) && l.releaseReserve() {
		err = put()
	}
	var own errOwn
	if err != nil && errors.As(err, &own) {
		return Event{}, fmt.Errorf("append event %s: %w", e.Type, err)
	}
	if err != nil {
		// The disk is full or the file broken: the event is not lost, it
		// waits in memory (and is listed) until Maintain writes it.
		e = l.hold(e, err)
	}
	l.publish(e)
	return e, nil
}

// applyConditions files the event written at key under its alarm
// condition and resolves the open alarms it clears.
func applyConditions(tx *bolt.Tx, b *bolt.Bucket, key []byte, e Event) error {
	open := tx.Bucket(bucketOpen)
	for _, cond := range e.Resolves {
		if err := resolve(b, open, cond, e); err != nil {
			return err
		}
	}
	if e.Condition != "" {
		return addOpen(open, e.Condition, key)
	}
	return nil
}

// resolve marks the unresolved alarms of cond resolved by e.
func resolve(b, open *bolt.Bucket, cond string, e Event) error {
	raw := open.Get([]byte(cond))
	if raw == nil {
		return nil
	}
	var keys [][]byte
	if err := json.Unmarshal(raw, &keys); err != nil {
		return fmt.Errorf("decode open alarms of %q: %w", cond, err)
	}
	for _, k := range keys {
		v := b.Get(k)
		if v == nil {
			continue // pruned
		}
		var a Event
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode event %x: %w", k, err)
		}
		a.ResolvedAt, a.ResolvedBy = e.Time, e.ID
		nv, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if err := b.Put(k, nv); err != nil {
			return err
		}
	}
	return open.Delete([]byte(cond))
}

func addOpen(open *bolt.Bucket, cond string, key []byte) error {
	var keys [][]byte
	if raw := open.Get([]byte(cond)); raw != nil {
		if err := json.Unmarshal(raw, &keys); err != nil {
			return fmt.Errorf("decode open alarms of %q: %w", cond, err)
		}
	}
	keys = append(keys, key)
	raw, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	return open.Put([]byte(cond), raw)
}

// OpenConditions lists the alarm conditions starting with prefix that
// some unresolved alarm still holds, so that a component that restarted
// without the state that would have resolved them can resolve them.
func (l *Log) OpenConditions(prefix string) ([]string, error) {
	var conds []string
	err := l.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOpen).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			conds = append(conds, string(k))
		}
		return nil
	})
	return conds, err
}

// Get returns the event with the given id.
func (l *Log) Get(id string) (Event, error) {
	k, ok := parseID(id)
	if !ok {
		return Event{}, ErrNotFound
	}
	if e, ok := l.pendingEvent(id); ok {
		return e, nil
	}
	var e Event
	err := l.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEvents).Get(k)
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return errOwn{err}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Event{}, err
		}
		return Event{}, fmt.Errorf("get event %s: %w", id, err)
	}
	return e, nil
}

// List returns up to limit events newest first, not older than since (zero
// since means no bound) and strictly older than the event with id before
// (empty before starts at the newest). next is the cursor for the following
// page, empty when there is none.
func (l *Log) List(since time.Time, before string, limit int) ([]Event, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("list events: limit %d must be positive", limit)
	}
	var start []byte
	if before != "" {
		k, ok := parseID(before)
		if !ok {
			return nil, "", fmt.Errorf("list events: malformed cursor %q", before)
		}
		start = k
	}
	var sinceKey []byte
	if !since.IsZero() && since.UnixNano() > 0 {
		sinceKey = timeKey(since)
	}
	var out []Event
	var next string
	err := l.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		var k, v []byte
		if start == nil {
			k, v = c.Last()
		} else {
			k, v = c.Seek(start)
			if k == nil {
				k, v = c.Last()
			} else {
				// Seek lands on start or the first key after it; both
				// are excluded because the cursor is exclusive.
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if sinceKey != nil && bytes.Compare(k, sinceKey) < 0 {
				break
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return errOwn{fmt.Errorf("decode event %x: %w", k, err)}
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		// An unreadable file still lists what is held in memory.
		l.log.Warn("list events", "err", err)
		out, next = nil, ""
		if held := l.pendingSnapshot(); len(held) == 0 {
			return nil, "", fmt.Errorf("list events: %w", err)
		}
	}
	// Merge the events held in memory (newest first, same bounds).
	held := l.pendingSnapshot()
	if len(held) == 0 {
		return out, next, nil
	}
	for _, e := range held {
		if before != "" && e.ID >= before {
			continue
		}
		if sinceKey != nil && e.ID < hex.EncodeToString(sinceKey) {
			continue
		}
		if next != "" && e.ID < next {
			continue // beyond this page; the next one lists it
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

func (l *Log) pendingSnapshot() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.pending...)
}

func (l *Log) pendingEvent(id string) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.pending {
		if e.ID == id {
			return e, true
		}
	}
	return Event{}, false
}

// Ack marks the event acknowledged by by. Acknowledging twice keeps the
// first acknowledgement, so the record shows who reacted first.
func (l *Log) Ack(id, by string) error {
	k, ok := parseID(id)
	if !ok {
		return ErrNotFound
	}
	l.mu.Lock()
	for i := range l.pending {
		if e := &l.pending[i]; e.ID == id {
			if !e.Acked {
				e.Acked, e.AckedAt, e.AckedBy = true, l.now().UTC(), by
			}
			l.mu.Unlock()
			return nil
		}
	}
	l.mu.Unlock()
	err := l.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		v := b.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return errOwn{fmt.Errorf("decode: %w", err)}
		}
		if e.Acked {
			return nil
		}
		e.Acked, e.AckedAt, e.AckedBy = true, l.now().UTC(), by
		nv, err := json.Marshal(e)
		if err != nil {
			return errOwn{err}
		}
		return b.Put(k, nv)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("ack event %s: %w", id, err)
	}
	return nil
}

// Prune deletes events older than the retention relative to now and
// returns how many it deleted.
func (l *Log) Prune(now time.Time) (int, error) {
	cutoff := timeKey(now.Add(-l.retention))
	n := 0
	err := l.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, cutoff) < 0; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return nil
		}
		// Open alarms that were pruned are no longer open.
		open := tx.Bucket(bucketOpen)
		var drop, keep [][]byte
		var lists [][][]byte
		err := open.ForEach(func(cond, raw []byte) error {
			var keys [][]byte
			if err := json.Unmarshal(raw, &keys); err != nil {
				return fmt.Errorf("decode open alarms of %q: %w", cond, err)
			}
			live := keys[:0]
			for _, k := range keys {
				if bytes.Compare(k, cutoff) >= 0 {
					live = append(live, k)
				}
			}
			switch {
			case len(live) == 0:
				drop = append(drop, bytes.Clone(cond))
			case len(live) < len(keys):
				keep = append(keep, bytes.Clone(cond))
				lists = append(lists, live)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, cond := range drop {
			if err := open.Delete(cond); err != nil {
				return err
			}
		}
		for i, cond := range keep {
			raw, err := json.Marshal(lists[i])
			if err != nil {
				return err
			}
			if err := open.Put(cond, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune event log %s: %w", l.path, err)
	}
	return n, nil
}

// Run prunes at once and then every PruneInterval until ctx ends (it
// returns ctx.Err()) or the Log is closed (it returns nil). A failed prune is
// logged and retried at the next tick; it never stops the log.
func (l *Log) Run(ctx context.Context) error {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	m := time.NewTicker(time.Second)
	defer m.Stop()
	for {
		select {
		case <-l.done:
			return nil
		default:
		}
		n, err := l.Prune(l.now())
		if err != nil {
			l.log.Error("prune events", "err", err)
		} else if n > 0 {
			l.log.Info("pruned events", "count", n)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-l.done:
				return nil
			case <-m.C:
				l.Maintain()
			case <-t.C:
				break wait
			}
		}
	}
}

// Subscribe returns a channel receiving every event appended from now on,
// and a function ending the subscription. A subscriber that does not keep
// up loses events rather than slowing Append: the log stays authoritative.
func (l *Log) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer < 1 {
		buffer = 1
	}
	s := &subscriber{ch: make(chan Event, buffer)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	l.subs[s] = struct{}{}
	return s.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[s]; ok {
			delete(l.subs, s)
			close(s.ch)
		}
	}
}

func (l *Log) publish(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs {
		select {
		case s.ch <- e:
		default:
			l.log.Warn("event subscriber full, dropped event", "type", e.Type, "id", e.ID)
		}
	}
}

// userinfoRE matches the userinfo of a URL ("scheme://user:pass@").
var userinfoRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@]*):([^/\s]*)@`)

// Scrub replaces passwords in URLs inside s with "xxxxx", the same
// replacement net/url's Redacted uses, so stored text never holds a camera
// password even if a caller forgot to redact it.
func Scrub(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}${2}:xxxxx@")
}
