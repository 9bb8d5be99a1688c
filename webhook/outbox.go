package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/buddyrec/buddyrec/internal/boltfile"

	"github.com/buddyrec/buddyrec/events"
)

// Defaults of Options.
const (
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultGiveUpAfter    = 24 * time.Hour
	DefaultRequestTimeout = 10 * time.Second
)

// Alarm kinds passed to Options.OnAlarm; they are event types, logged as
// they are.
const (
	// AlarmDisabled: the receiver answered 410 Gone, or the target is
	// misconfigured; nothing more is sent to it until the next Open.
	AlarmDisabled = events.TypeWebhookDisabled
	// AlarmGaveUp: a notice could not be delivered within GiveUpAfter and
	// was dropped.
	AlarmGaveUp = events.TypeWebhookGaveUp
)

// ErrClosed is returned by Enqueue and Run after Close.
var ErrClosed = errors.New("webhook outbox closed")

// Options configure an Outbox.
type Options struct {
	// Targets are the receivers. An invalid target (bad URL, secret or
	// filter, duplicate name) is reported through OnAlarm and Stats and
	// skipped; the others work normally.
	Targets []Target
	// Logger receives delivery failures; nil discards. Secrets and URL
	// userinfo/query strings are never logged.
	Logger *slog.Logger
	// Client sends the requests; nil means a client that does not follow
	// redirects (a redirect counts as a failed attempt).
	Client *http.Client
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts (jittered to 50–100 % of the step). Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// GiveUpAfter is how long after Enqueue a notice may keep failing
	// before it is dropped with an AlarmGaveUp. Default 24 h.
	GiveUpAfter time.Duration
	// RequestTimeout bounds one attempt. Default 10 s.
	RequestTimeout time.Duration
	// OnAlarm is called (from a sender goroutine; keep it short) when a
	// target is disabled or a notice is given up. text holds no secrets.
	OnAlarm func(kind events.Type, target, text string)
	// Now is the clock that ages entries for GiveUpAfter; nil = time.Now.
	// Signature timestamps always use the real clock.
	Now func() time.Time

	// openFile opens outbox.db in place of os.OpenFile (tests break the
	// file under bbolt through it).
	openFile func(string, int, os.FileMode) (*os.File, error)
}

// TargetStats describe one target for metrics and the status page.
type TargetStats struct {
	Name      string
	URL       string // without userinfo or query
	Pending   int    // notices in the outbox for this target
	Delivered uint64 // since Open
	Failures  uint64 // failed attempts since Open
	GaveUp    uint64 // notices dropped after GiveUpAfter since Open
	LastError string
	Disabled  bool
}

// Outbox is a durable, per-target ordered queue of notices. Enqueue commits
// to disk before returning; Run delivers. Entries survive Close, restarts
// and kill -9 and are re-sent after the next Open (at least once: a notice
// whose delivery was not recorded before a crash is sent again with the
// same webhook-id, so receivers can de-duplicate).
//
// A 410 Gone answer disables the target until the next Open and raises
// AlarmDisabled. Its pending and future notices are kept on disk (not
// dropped), so that after the receiver is fixed and buddyrec restarts they
// are delivered, or given up once older than GiveUpAfter.
type Outbox struct {
	db     *boltfile.File // reopened after a failure (see reopen)
	path   string
	o      Options
	log    *slog.Logger
	client *http.Client
	// targets and valid change under mu (SetTargets); a target's own
	// fields never change once built.
	targets []*target // configuration order, invalid ones included
	valid   []*target
	runCtx  context.Context // Run's, for senders SetTargets starts
	senders sync.WaitGroup  // Run's senders
	// setMu runs SetTargets one at a time; it is never held by anything
	// else.
	setMu sync.Mutex

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running bool
	closed  bool
}

type target struct {
	t       Target
	key     []byte
	safeURL string
	bucket  []byte
	wake    chan struct{}
	stop    context.CancelFunc // ends its sender (SetTargets); set under Outbox.mu

	mu        sync.Mutex
	invalid   bool
	disabled  bool
	delivered uint64
	failures  uint64
	gaveUp    uint64
	lastErr   string
}

// record is one queued delivery as stored in bbolt. Body is the exact JSON
// sent on every attempt so retries are byte-identical.
type record struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Enqueued int64  `json:"enqueued"` // UnixNano
	Body     []byte `json:"body"`
}

func bucketName(target string) []byte { return []byte("target/" + target) }

// Open opens (creating if needed) the outbox file at path, giving up after
// one second if another process holds it.
func Open(path string, o Options) (*Outbox, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	client := o.Client
	if client == nil {
		client = defaultClient()
	}

	ob := &Outbox{path: path, o: o, log: o.Logger, client: client}
	var alarms []*target
	ob.targets, ob.valid, alarms = buildTargets(o.Targets)

	configured := map[string]bool{}
	for _, t := range ob.valid {
		configured[string(t.bucket)] = true
	}
	db, err := boltfile.Open(path, boltfile.Options{Bolt: bolt.Options{OpenFile: o.openFile}, Init: func(tx *bolt.Tx) error {
		// Never called with ob.mu held: nothing holds it across a
		// transaction (SetTargets creates buckets before taking it).
		ob.mu.Lock()
		valid := ob.valid
		ob.mu.Unlock()
		for _, t := range valid {
			if _, err := tx.CreateBucketIfNotExists(t.bucket); err != nil {
				return fmt.Errorf("bucket for %s: %w", t.t.Name, err)
			}
		}
		return nil
	}})
	if err != nil {
		return nil, fmt.Errorf("webhook outbox: %w", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if !configured[string(name)] {
				if n := b.Stats().KeyN; n > 0 {
					o.Logger.Warn("webhook outbox holds notices for a target no longer configured; kept until it returns",
						"bucket", string(name), "pending", n)
				}
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read webhook outbox %s: %w", path, err)
	}
	ob.db = db
	ob.ctx, ob.cancel = context.WithCancel(context.Background())
	for _, t := range alarms {
		ob.log.Error("webhook target disabled", "target", t.t.Name, "err", t.lastErr)
		ob.alarm(AlarmDisabled, t.t.Name, t.lastErr)
	}
	return ob, nil
}

func defaultClient() *http.Client { return Client(nil) }

// Client returns the client notices are sent with: it never follows a
// redirect (a redirect counts as a failed attempt, so a notice is never
// sent where the installer did not point it), and with roots non-nil it
// checks the PSIM's certificate against them instead of the system store.
func Client(roots *x509.CertPool) *http.Client {
	c := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if roots != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		c.Transport = tr
	}
	return c
}

// Enqueue stores n for every target whose filter matches, committed to disk
// before it returns, and wakes their senders. An empty ID is replaced by a
// fresh one and a zero Time by now; the ID becomes the webhook-id of every
// attempt. Enqueue never waits for a receiver.
func (ob *Outbox) Enqueue(n Notice) error {
	if n.Type == "" {
		return errors.New("enqueue notice: empty type")
	}
	if n.ID == "" {
		n.ID = newID()
	}
	if n.Time.IsZero() {
		n.Time = ob.o.Now()
	}
	n.Time = n.Time.UTC()
	n = n.scrubbed()
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("enqueue notice %s: %w", n.ID, err)
	}
	v, err := json.Marshal(record{ID: n.ID, Type: n.Type, Enqueued: ob.o.Now().UnixNano(), Body: body})
	if err != nil {
		return fmt.Errorf("enqueue notice %s: %w", n.ID, err)
	}
	ob.mu.Lock()
	closed := ob.closed
	var to []*target
	for _, t := range ob.valid {
		if t.t.Wants(n.Type) {
			to = append(to, t)
		}
	}
	ob.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if len(to) == 0 {
		return nil
	}
	put := func() error {
		return ob.db.Update(func(tx *bolt.Tx) error {
			for _, t := range to {
				b := tx.Bucket(t.bucket)
				seq, err := b.NextSequence()
				if err != nil {
					return err
				}
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], seq)
				if err := b.Put(k[:], v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	ob.reopen()
	// A failure on a file gone bad is retried once on the reopened file:
	// the notice is not lost to a remount.
	if err = put(); err != nil && ob.db.Broken() {
		ob.reopen()
		err = put()
	}
	if err != nil {
		return fmt.Errorf("enqueue notice %s: %w", n.ID, err)
	}
	for _, t := range to {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run delivers queued notices, one goroutine per target, until ctx ends or
// Close is called. It returns ctx.Err() or nil after Close.
func (ob *Outbox) Run(ctx context.Context) error {
	ob.mu.Lock()
	if ob.closed {
		ob.mu.Unlock()
		return ErrClosed
	}
	if ob.running {
		ob.mu.Unlock()
		return errors.New("webhook outbox already running")
	}
	ob.running = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ob.ctx, cancel)
	defer stop()
	ob.runCtx = ctx
	for _, t := range ob.valid {
		ob.startLocked(t)
	}
	ob.mu.Unlock()
	<-ctx.Done()
	ob.senders.Wait()
	ob.mu.Lock()
	ob.running = false
	ob.mu.Unlock()
	if ob.ctx.Err() != nil {
		return nil
	}
	return ctx.Err()
}

// Close stops delivery, waits for the senders and closes the file. Pending
// notices stay on disk for the next Open.
func (ob *Outbox) Close() error {
	ob.mu.Lock()
	if ob.closed {
		ob.mu.Unlock()
		return nil
	}
	ob.closed = true
	ob.cancel()
	ob.mu.Unlock()
	ob.wg.Wait()
	if err := ob.db.Close(); err != nil {
		return fmt.Errorf("close webhook outbox %s: %w", ob.path, err)
	}
	return nil
}

// Stats returns one entry per configured target, in configuration order.
func (ob *Outbox) Stats() []TargetStats {
	ob.mu.Lock()
	targets, valid := ob.targets, ob.valid
	ob.mu.Unlock()
	pending := map[*target]int{}
	_ = ob.db.View(func(tx *bolt.Tx) error {
		for _, t := range valid {
			if b := tx.Bucket(t.bucket); b != nil {
				pending[t] = b.Stats().KeyN
			}
		}
		return nil
	})
	out := make([]TargetStats, 0, len(targets))
	for _, t := range targets {
		t.mu.Lock()
		out = append(out, TargetStats{
			Name:      t.t.Name,
			URL:       t.safeURL,
			Pending:   pending[t],
			Delivered: t.delivered,
			Failures:  t.failures,
			GaveUp:    t.gaveUp,
			LastError: t.lastErr,
			Disabled:  t.disabled,
		})
		t.mu.Unlock()
	}
	return out
}

func (ob *Outbox) alarm(kind events.Type, target, text string) {
	if ob.o.OnAlarm != nil {
		ob.o.OnAlarm(kind, target, text)
	}
}

// reopen reopens outbox.db if a transaction failed since it was opened:
// a file system that went bad and came back leaves bbolt's mapping dead
// until then. Enqueue and every send attempt call it, so notices flow
// again without a restart.
func (ob *Outbox) reopen() {
	if reopened, err := ob.db.Reopen(); err != nil {
		ob.o.Logger.Debug("webhook outbox still unavailable", "err", err)
	} else if reopened {
		ob.o.Logger.Info("webhook outbox reopened after a failure", "path", ob.db.Path())
	}
}

// head returns the oldest entry of t.
func (ob *Outbox) head(t *target) (key []byte, rec record, ok bool, err error) {
	ob.reopen()
	err = ob.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(t.bucket)
		if b == nil {
			return nil
		}
		k, v := b.Cursor().First()
		if k == nil {
			return nil
		}
		key = bytes.Clone(k)
		ok = true
		return json.Unmarshal(v, &rec)
	})
	return key, rec, ok, err
}

func (ob *Outbox) remove(t *target, key []byte) error {
	return ob.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(t.bucket).Delete(key)
	})
}

// sendLoop delivers t's entries strictly in order: the head entry is
// retried until delivered or given up before the next one is tried.
func (ob *Outbox) sendLoop(ctx context.Context, t *target) {
	attempt := 0
	for ctx.Err() == nil {
		key, rec, ok, err := ob.head(t)
		if err != nil && ok {
			// An undecodable entry would block the queue forever: drop it.
			ob.log.Error("webhook outbox entry unreadable, dropped", "target", t.t.Name, "err", err)
			if err := ob.remove(t, key); err != nil {
				ob.log.Error("webhook outbox remove", "target", t.t.Name, "err", err)
				ob.sleep(ctx, ob.o.MaxBackoff)
			}
			continue
		}
		if err != nil {
			ob.log.Error("webhook outbox read", "target", t.t.Name, "err", err)
			ob.sleep(ctx, ob.o.MinBackoff)
			continue
		}
		if !ok {
			select {
			case <-ctx.Done():
			case <-t.wake:
			}
			continue
		}
		status, err := deliver(ctx, ob.client, ob.o.RequestTimeout, t, rec.ID, rec.Body)
		if ctx.Err() != nil {
			return // shutting down: the entry stays for the next run
		}
		if err == nil {
			attempt = 0
			t.mu.Lock()
			t.delivered++
			t.mu.Unlock()
			ob.log.Debug("webhook delivered", "target", t.t.Name, "id", rec.ID, "type", rec.Type)
			if err := ob.remove(t, key); err != nil {
				// It will be sent again: at least once, same webhook-id.
				ob.log.Error("webhook outbox remove", "target", t.t.Name, "err", err)
				ob.sleep(ctx, ob.o.MinBackoff)
			}
			continue
		}
		t.mu.Lock()
		t.failures++
		t.lastErr = err.Error()
		t.mu.Unlock()
		if status == http.StatusGone {
			t.mu.Lock()
			t.disabled = true
			t.mu.Unlock()
			text := fmt.Sprintf("receiver %s answered 410 Gone; notices are kept and sending resumes after a restart", t.safeURL)
			ob.log.Error("webhook target disabled", "target", t.t.Name, "url", t.safeURL)
			ob.alarm(AlarmDisabled, t.t.Name, text)
			return
		}
		attempt++
		age := ob.o.Now().Sub(time.Unix(0, rec.Enqueued))
		if age >= ob.o.GiveUpAfter {
			attempt = 0
			t.mu.Lock()
			t.gaveUp++
			t.mu.Unlock()
			text := fmt.Sprintf("notice %s (%s) not delivered to %s after %s: %v", rec.ID, rec.Type, t.safeURL, age.Round(time.Second), err)
			ob.log.Error("webhook notice given up", "target", t.t.Name, "id", rec.ID, "type", rec.Type, "err", err)
			ob.alarm(AlarmGaveUp, t.t.Name, text)
			if err := ob.remove(t, key); err != nil {
				ob.log.Error("webhook outbox remove", "target", t.t.Name, "err", err)
			}
			continue
		}
		ob.log.Warn("webhook attempt failed", "target", t.t.Name, "url", t.safeURL, "id", rec.ID, "attempt", attempt, "err", err)
		ob.sleep(ctx, ob.backoff(attempt))
	}
}

// backoff is MinBackoff·2^(attempt-1) capped at MaxBackoff, jittered to
// 50–100 % so that targets recovering together are not hit in lockstep.
func (ob *Outbox) backoff(attempt int) time.Duration {
	d := ob.o.MinBackoff
	for i := 1; i < attempt && d < ob.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, ob.o.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

func (ob *Outbox) sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// deliver makes one signed attempt. It returns the HTTP status (0 when no
// answer) and an error for anything but 2xx. Errors name the URL without
// userinfo or query.
func deliver(ctx context.Context, c *http.Client, timeout time.Duration, t *target, id string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.t.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("post %s: bad request", t.safeURL)
	}
	setHeaders(req.Header, t.key, id, time.Now(), body)
	req.Header.Set("User-Agent", "buddyrec-webhook/1")
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, query included
		}
		return 0, fmt.Errorf("post %s: %w", t.safeURL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("post %s: status %s", t.safeURL, resp.Status)
	}
	return resp.StatusCode, nil
}
