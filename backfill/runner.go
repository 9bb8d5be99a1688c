package backfill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/storage"
)

// Options configure a Runner.
type Options struct {
	// Store is the home's storage. Required.
	Store *storage.Store
	// Home is this server's name. Required.
	Home string
	// Cameras lists the home's camera ids (its config). Required.
	Cameras func() []string
	// Peers lists the alive peers to ask. Required.
	Peers func() []export.Peer
	// Client and PeerHeader make and authenticate requests to peers.
	Client     *http.Client
	PeerHeader http.Header
	// Dir holds the copy in progress and its state; it must be on the
	// data dir's file system and outside the camera folders (for example
	// data_dir/.backfill). Required.
	Dir string
	// Rate limits the copy, in bytes per second; 0 is unlimited.
	Rate float64
	// RateFor, when set, chooses the limit per peer instead of Rate, in
	// bytes per second (0: unlimited), and says how it was chosen (see
	// AutoMbps): it is asked before each segment is copied, so a peer
	// that moved to another link gets that link's limit.
	RateFor func(p export.Peer) (rate float64, how string)
	// Retention is the home's: footage older is not copied. 0 means
	// DefaultWindow.
	Retention time.Duration
	// Scan is how often peers are asked what they hold (default 10s).
	Scan time.Duration
	// RetryAfter is the first wait after a failed copy before the same
	// holder is tried again; it doubles per failure up to 10 min
	// (default 5s).
	RetryAfter time.Duration
	// OnCompleted is called when every segment of an episode (what one
	// peer held that the home lacked) is copied.
	OnCompleted func(Episode)
	// OnRefused is called when a copy failed verification.
	OnRefused func(c Copy, err error)
	Logger    *slog.Logger
}

// DefaultWindow is how far back a home without retention looks.
const DefaultWindow = 30 * 24 * time.Hour

// Episode is one run of copies from one peer: it starts when the peer is
// found holding footage the home lacks and completes when none is left.
type Episode struct {
	Peer     string
	Started  time.Time
	Ended    time.Time
	Cameras  []string
	Segments int
	Bytes    int64
	Footage  time.Duration
}

// Runner gathers the peers' listings, plans (Plan) and copies, one
// segment at a time.
type Runner struct {
	o        Options
	log      *slog.Logger
	lim      *limiter // its rate is set under mu, read by the copy goroutine only between copies
	rateHow  string   // how RateFor chose the limit of the last copy
	maxCands int      // maxCandidates; tests lower it

	mu       sync.Mutex
	peers    map[string]*peerState
	episodes map[string]*episode
	avoid    map[Source]time.Time
	fails    map[Source]int
	lastErr  map[Key]string
	cur      *api.BackfillCopy
	copied   int
	bytes    int64
	refused  int
}

// peerState is what the runner knows of one peer's holdings: the segments
// it holds that the home lacked when last planned.
type peerState struct {
	scanned  time.Time // start of the last successful scan (incremental scans go back from there)
	fullScan time.Time // start of the last full scan
	cands    map[Key]storage.Segment
	// busy is set while the peer still records one of the home's cameras
	// that the home does not record itself (the outage goes on): an
	// episode does not complete before that ends.
	busy bool
	// truncated is set when the last full scan found more than
	// maxCandidates: only the oldest are kept, and the peer is listed in
	// full again once they are copied.
	truncated bool
}

// maxCandidates bounds what is kept in memory of one peer's holdings (a
// replaced disk may lack a month of many cameras): the oldest, copied
// first; the rest is found by the next full scan.
const maxCandidates = 20000

type episode struct {
	started time.Time
	cams    map[string]*camProgress
}

type camProgress struct {
	segments int
	bytes    int64
	footage  time.Duration
}

// New checks o and prepares the temp folder.
func New(o Options) (*Runner, error) {
	if o.Store == nil || o.Home == "" || o.Cameras == nil || o.Peers == nil || o.Dir == "" {
		return nil, errors.New("backfill: Store, Home, Cameras, Peers and Dir are required")
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Scan <= 0 {
		o.Scan = 10 * time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = DefaultWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("backfill: %w", err)
	}
	return &Runner{
		o: o, log: o.Logger, lim: newLimiter(o.Rate), maxCands: maxCandidates,
		peers: map[string]*peerState{}, episodes: map[string]*episode{},
		avoid: map[Source]time.Time{}, fails: map[Source]int{}, lastErr: map[Key]string{},
	}, nil
}

// fullScanEvery is how often a peer's whole window is listed again, to
// catch what incremental scans cannot see (a peer's clock, a missed scan).
const fullScanEvery = time.Hour

// scanOverlap is how far before the last scan an incremental scan starts:
// a segment open then is closed and listed now.
const scanOverlap = 10 * time.Minute

// Run copies until ctx ends. It runs on its own OS thread at the lowest
// CPU and best-effort I/O priority, so that recording never waits for it.
func (r *Runner) Run(ctx context.Context) {
	runtime.LockOSThread() // the thread exits with the goroutine: the priority never leaks
	if err := lowerThreadPriority(); err != nil {
		r.log.Debug("backfill: lower thread priority", "err", err)
	}
	var lastScan time.Time
	var known string // the alive peers at the last scan
	for ctx.Err() == nil {
		// A peer that appears (the buddy after the home's restart, a
		// failback) is asked at once, not at the next interval.
		if names := peerNames(r.o.Peers()); time.Since(lastScan) >= r.o.Scan || names != known || r.rescanDue() {
			known, lastScan = names, time.Now()
			r.scan(ctx)
		}
		c, ok := r.next()
		if !ok {
			wait := min(r.o.Scan-time.Since(lastScan), time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(wait, 10*time.Millisecond)):
			}
			continue
		}
		r.copyOne(ctx, c)
	}
}

func peerNames(ps []export.Peer) string {
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// Status is what the API and the status page show.
func (r *Runner) Status() api.Backfill {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := api.Backfill{Server: r.o.Home, RateMbps: r.lim.rate * 8 / 1e6, RateAuto: r.o.RateFor != nil, RateChosen: r.rateHow, Cameras: []api.BackfillCamera{},
		CopiedSegments: r.copied, CopiedBytes: r.bytes, Refused: r.refused}
	if r.cur != nil {
		c := *r.cur
		out.Copying = &c
	}
	type ck struct{ cam, peer string }
	rows := map[ck]*api.BackfillCamera{}
	for _, c := range r.pendingLocked() {
		k := ck{c.Segment.Camera, c.Peer}
		row := rows[k]
		if row == nil {
			row = &api.BackfillCamera{Camera: k.cam, Peer: k.peer}
			rows[k] = row
		}
		row.PendingSegments++
		row.PendingBytes += c.Segment.Bytes
		row.PendingSeconds += c.Segment.End.Sub(c.Segment.Start).Seconds()
		if e := r.lastErr[KeyOf(c.Segment)]; e != "" {
			row.LastError = e
		}
	}
	for k, row := range rows {
		if ep := r.episodes[k.peer]; ep != nil && ep.cams[k.cam] != nil {
			row.CopiedBytes = ep.cams[k.cam].bytes
		}
		if r.cur != nil && r.cur.Camera == k.cam && r.cur.Peer == k.peer {
			row.Copying = true
			row.CopiedBytes += r.cur.Done
		}
		if total := row.CopiedBytes + row.PendingBytes; total > 0 {
			row.Percent = float64(row.CopiedBytes) * 100 / float64(total)
		}
		row.Text = statusText(row)
		out.Cameras = append(out.Cameras, *row)
	}
	slices.SortFunc(out.Cameras, func(a, b api.BackfillCamera) int {
		return cmp.Or(cmp.Compare(a.Camera, b.Camera), cmp.Compare(a.Peer, b.Peer))
	})
	return out
}

// statusText is the page's line: "rec-a/cam1: 10 min at rec-b, copying 40 %".
func statusText(row *api.BackfillCamera) string {
	d := time.Duration(row.PendingSeconds * float64(time.Second))
	var amount string
	switch {
	case d < time.Minute:
		amount = fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	case d < 2*time.Hour:
		amount = fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	default:
		amount = fmt.Sprintf("%.1f h", d.Hours())
	}
	state := "waiting"
	if row.Copying {
		state = "copying"
	}
	s := fmt.Sprintf("%s: %s at %s, %s %d %%", row.Camera, amount, row.Peer, state, int(row.Percent))
	if row.LastError != "" {
		s += " (last try: " + row.LastError + ")"
	}
	return s
}

// pendingLocked is every segment still to copy, each once, from the holder
// Plan would pick (ignoring backoff).
func (r *Runner) pendingLocked() []Copy {
	var ls []Listing
	for _, name := range sortedKeys(r.peers) {
		ps := r.peers[name]
		l := Listing{Peer: name}
		for _, s := range ps.cands {
			l.Segments = append(l.Segments, s)
		}
		ls = append(ls, l)
	}
	return Plan(Inputs{Home: r.o.Home, Listings: ls})
}

// scan asks every alive peer what it holds of the home's cameras and
// keeps, per peer, what the home lacks. A peer no longer alive is
// forgotten (its holdings are asked again in full when it is back).
func (r *Runner) scan(ctx context.Context) {
	peers := r.o.Peers()
	alive := map[string]bool{}
	for _, p := range peers {
		alive[p.Name] = true
	}
	r.mu.Lock()
	for name := range r.peers {
		if !alive[name] {
			delete(r.peers, name)
		}
	}
	r.mu.Unlock()
	now := time.Now()
	horizon := now.Add(-r.o.Retention)
	cams := r.o.Cameras()
	for _, p := range peers {
		if p.Name == r.o.Home || p.HTTP == "" || ctx.Err() != nil {
			continue
		}
		r.mu.Lock()
		ps := r.peers[p.Name]
		if ps == nil {
			ps = &peerState{cands: map[Key]storage.Segment{}}
			r.peers[p.Name] = ps
		}
		from, full := ps.scanned.Add(-scanOverlap), false
		if ps.scanned.IsZero() || now.Sub(ps.fullScan) >= fullScanEvery {
			from, full = horizon, true
		}
		r.mu.Unlock()
		found := map[Key]storage.Segment{}
		ok, busy := true, false
		for _, cam := range cams {
			// A long window is asked a day at a time: one answer stays small.
			for t := from; t.Before(now) && ok; t = t.Add(24 * time.Hour) {
				end := minTime(t.Add(24*time.Hour), now.Add(time.Minute))
				b, err := r.scanWindow(ctx, p, cam, t, end, horizon, found)
				if err != nil {
					r.log.Warn("backfill: ask peer for footage", "peer", p.Name, "camera", cam, "err", err)
					ok = false
				}
				busy = busy || b
			}
		}
		if !ok {
			continue
		}
		r.mu.Lock()
		if full {
			ps.truncated = false
		}
		if len(found) > r.maxCands {
			found = oldest(found, r.maxCands)
			ps.truncated = true
		}
		if full {
			ps.cands = found
			ps.fullScan = now
		} else {
			for k, s := range found {
				ps.cands[k] = s
			}
		}
		ps.scanned = now
		ps.busy = busy
		r.episodeLocked(p.Name, now)
		r.mu.Unlock()
	}
}

// scanWindow lists one peer's segments of cam in [from, to) and adds to
// found those Plan would copy given the home's index. busy reports that
// the peer is recording cam while the home is not.
func (r *Runner) scanWindow(ctx context.Context, p export.Peer, cam string, from, to, horizon time.Time, found map[Key]storage.Segment) (busy bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	segs, err := export.FetchSegments(ctx, r.o.Client, r.o.PeerHeader, p, cam, from, to)
	if err != nil {
		return false, err
	}
	if len(segs) == 0 {
		return false, nil
	}
	lo, hi := segs[0].Start, segs[0].End
	peerOpen := false
	for _, s := range segs {
		lo, hi = minTime(lo, s.Start), maxTime(hi, s.End)
		peerOpen = peerOpen || (s.Open && s.Camera == cam)
	}
	own, err := r.o.Store.Segments(cam, lo.Add(-time.Minute), hi.Add(time.Minute))
	if err != nil {
		return false, err
	}
	ownOpen := false
	for _, s := range own {
		ownOpen = ownOpen || (s.Open && s.RecordedBy == r.o.Home)
	}
	for _, c := range Plan(Inputs{Home: r.o.Home, Own: map[string][]storage.Segment{cam: own}, Listings: []Listing{{Peer: p.Name, Segments: segs}}, Since: horizon}) {
		found[KeyOf(c.Segment)] = c.Segment
	}
	return peerOpen && !ownOpen, nil
}

// planBatch bounds how many of the oldest pending segments one round
// plans over, so that a home missing a month does not read a month of its
// index after every copy.
const planBatch = 256

// next plans over the oldest pending segments and the home's index now,
// drops what the home holds meanwhile, and returns the first copy not in
// backoff.
func (r *Runner) next() (Copy, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for s, until := range r.avoid {
		if now.After(until) {
			delete(r.avoid, s)
		}
	}
	type held struct {
		peer string
		seg  storage.Segment
	}
	var all []held
	for name, ps := range r.peers {
		for _, s := range ps.cands {
			all = append(all, held{name, s})
		}
	}
	if len(all) == 0 {
		return Copy{}, false
	}
	slices.SortFunc(all, func(a, b held) int {
		return cmp.Or(a.seg.Start.Compare(b.seg.Start), cmp.Compare(a.peer, b.peer))
	})
	all = all[:min(len(all), planBatch)]
	byPeer := map[string][]storage.Segment{}
	span := map[string][2]time.Time{}
	for _, h := range all {
		byPeer[h.peer] = append(byPeer[h.peer], h.seg)
		sp, ok := span[h.seg.Camera]
		if !ok {
			sp = [2]time.Time{h.seg.Start, h.seg.End}
		}
		span[h.seg.Camera] = [2]time.Time{minTime(sp[0], h.seg.Start), maxTime(sp[1], h.seg.End)}
	}
	in := Inputs{Home: r.o.Home, Own: map[string][]storage.Segment{}, Since: now.Add(-r.o.Retention)}
	for cam, sp := range span {
		own, err := r.o.Store.Segments(cam, sp[0].Add(-time.Minute), sp[1].Add(time.Minute))
		if err != nil {
			r.log.Warn("backfill: read index", "camera", cam, "err", err)
			return Copy{}, false
		}
		in.Own[cam] = own
	}
	for _, name := range sortedKeys(byPeer) {
		in.Listings = append(in.Listings, Listing{Peer: name, Segments: byPeer[name]})
	}
	// Without backoff: what is no longer wanted at all is dropped.
	wanted := map[Key]bool{}
	for _, c := range Plan(in) {
		wanted[KeyOf(c.Segment)] = true
	}
	for _, h := range all {
		if k := KeyOf(h.seg); !wanted[k] {
			delete(r.peers[h.peer].cands, k)
		}
	}
	in.Avoid = map[Source]bool{}
	for s := range r.avoid {
		in.Avoid[s] = true
	}
	plan := Plan(in)
	for _, name := range sortedKeys(r.peers) {
		r.episodeLocked(name, now)
	}
	if len(plan) == 0 {
		return Copy{}, false
	}
	return plan[0], true
}

// episodeLocked starts an episode for peer when it holds something to copy
// and completes it when nothing is left.
func (r *Runner) episodeLocked(peer string, now time.Time) {
	ps := r.peers[peer]
	pending := ps != nil && len(ps.cands) > 0
	busy := ps != nil && (ps.busy || ps.truncated)
	ep := r.episodes[peer]
	switch {
	case pending && ep == nil:
		r.episodes[peer] = &episode{started: now, cams: map[string]*camProgress{}}
	case !pending && !busy && ep != nil:
		delete(r.episodes, peer)
		if len(ep.cams) == 0 {
			return // nothing was copied: the home had it all meanwhile
		}
		e := Episode{Peer: peer, Started: ep.started, Ended: now}
		for _, cam := range sortedKeys(ep.cams) {
			p := ep.cams[cam]
			e.Cameras = append(e.Cameras, cam)
			e.Segments += p.segments
			e.Bytes += p.bytes
			e.Footage += p.footage
		}
		r.log.Info("backfill completed", "peer", peer, "cameras", len(e.Cameras), "segments", e.Segments, "bytes", e.Bytes, "footage", e.Footage)
		if r.o.OnCompleted != nil {
			go r.o.OnCompleted(e) // never on the copy path
		}
	}
}

// rescanDue reports a peer whose kept holdings were truncated and are all
// copied: it is listed in full again now, not at the next full scan.
func (r *Runner) rescanDue() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	due := false
	for _, ps := range r.peers {
		if ps.truncated && len(ps.cands) == 0 {
			ps.fullScan = time.Time{}
			due = true
		}
	}
	return due
}

// oldest keeps the n segments of m that start first.
func oldest(m map[Key]storage.Segment, n int) map[Key]storage.Segment {
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Camera, b.Camera)) })
	out := make(map[Key]storage.Segment, n)
	for _, k := range keys[:n] {
		out[k] = m[k]
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// tempPath and statePath are the copy in progress and what it is.
func (r *Runner) tempPath() string  { return filepath.Join(r.o.Dir, "copy.part") }
func (r *Runner) statePath() string { return filepath.Join(r.o.Dir, "copy.json") }
