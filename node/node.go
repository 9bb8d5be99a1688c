package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/backfill"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/internal/connlimit"
	"github.com/buddyrec/buddyrec/internal/httpserver"
	"github.com/buddyrec/buddyrec/live"
	"github.com/buddyrec/buddyrec/metrics"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/view"
	"github.com/buddyrec/buddyrec/web"
	"github.com/buddyrec/buddyrec/webhook"
	"github.com/buddyrec/buddyrec/worker"
)

// Options configure a Node.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Reconcile is how often the control loop re-plans without a membership
	// change (to pick up recorder state and stability). Default 250ms.
	Reconcile time.Duration
	// OnReady, when set, is called once recording has started: the first
	// plan is applied and every camera it gives this server records (or is
	// offline), bounded by readyWait. The service manager's readiness
	// notification hangs on it.
	OnReady func(status string)
	// Restart, when set, drains and restarts the process (the command's
	// clean stop followed by a re-exec): the page's Restart button and
	// POST /api/v1/restart call it. It returns at once.
	Restart func(by string) error
}

// Node is one running buddyrec server.
type Node struct {
	cfg     *config.Config
	log     *slog.Logger
	started time.Time

	store   *storage.Store
	rec     cameraRecorder              // in-process or worker processes; see workers.go
	workers atomic.Pointer[worker.Pool] // rec when it is a pool, for storage's goroutines
	events  *events.Log
	outbox  *webhook.Outbox
	cluster *buddy.Cluster // nil when standalone
	live    *live.Server   // nil without [listen] rtsp
	site    *relay.Site    // every camera of the site, relayed when recorded elsewhere
	view    *view.Server   // the browser view

	backfill *backfill.Runner // copies back what peers recorded of our cameras

	auth    *web.Auth
	metrics *metrics.Metrics

	// peerHeader authenticates this server's requests to its peers.
	peerHeader http.Header
	// peerClient makes every request to a peer; it trusts [http] ca_file.
	peerClient *http.Client

	httpLn  net.Listener
	httpSrv *http.Server
	// fds keeps accepted connections (HTTP, RTSP viewers) out of the
	// descriptors recording needs; lock holds data_dir for this process.
	fds  *connlimit.Budget
	lock *dataDirLock

	// running is the config in force, reloads hand a new one to the
	// control loop, reloadMu runs reloads one at a time (reload.go). cfg
	// above is the config the server started with: a reload never changes
	// the keys that need a restart, so they may be read there.
	running atomic.Pointer[runningConfig]
	// own caches ownCameras for the config in force (control loop only).
	own struct {
		rc   *runningConfig
		byID map[string]recorder.Camera
	}
	reloads  chan reloadRequest
	reloadMu sync.Mutex

	onReady        func(status string)
	restart        func(by string) error
	reconcileEvery time.Duration
	lastKeyAlarm   atomic.Int64 // unix nanos of the last gossip key alarm
	cpu            cpuSampler
	usage          usageCache // storage figures for the API and page

	// Owned by the control loop.
	ctl        control.State // the rules' memory between rounds
	lastLoad   api.Load      // load as last published in the record
	lastLoadAt time.Time     // when lastLoad was measured
	// decoded holds peers' records as last decoded, by server: a record
	// is decoded again only when its version changes, not every round.
	decoded  map[string]decodedRecord
	secrets  map[string]decodedSecrets // buddies' secrets as last decoded, by home
	members  []buddy.Member            // membership as last gathered
	runs     map[string]runStart       // first durable frame of each pipeline run, by camera
	gathered map[string]recordBody     // records as last gathered

	mu   sync.Mutex
	seen controlView // written by the control loop; read by the API under mu

	maintMu sync.Mutex
	maint   maintenance // drain state; persisted in data_dir (maintenance.go)

	// Lifecycle: Run sets runCancel and runDone; Close ends Run.
	runMu     sync.Mutex
	runCancel context.CancelFunc
	runDone   chan struct{}
	closed    bool
}

// New opens the node's storage, event log and outbox and binds its HTTP
// address, so that a port conflict is reported before anything records.
// Run starts the rest.
func New(o Options) (*Node, error) {
	c := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: c, log: log, started: time.Now(), reconcileEvery: o.Reconcile, onReady: o.OnReady, restart: o.Restart}
	n.initReload(c)
	if n.reconcileEvery <= 0 {
		n.reconcileEvery = 250 * time.Millisecond
	}
	peerClient, err := newPeerClient(c.HTTP.CAFile)
	if err != nil {
		return nil, fmt.Errorf("peer client: %w", err)
	}
	n.peerClient = peerClient
	roots, err := config.SiteRoots(c.HTTP.CAFile)
	if err != nil {
		return nil, fmt.Errorf("PSIM client: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data_dir: %w", err)
	}
	// Before any bolt file: a second server would otherwise wait for
	// their locks and fail with a timeout that names neither.
	if n.lock, err = lockDataDir(c.DataDir); err != nil {
		return nil, err
	}
	if n.maint, err = loadMaintenance(c.DataDir); err != nil {
		n.lock.release()
		return nil, err
	}
	if n.maint.On {
		log.Warn("this server is in maintenance (drained) since "+n.maint.Since.Format(time.RFC3339)+": its cameras stay with its buddies until `buddyrec undrain`", "by", n.maint.By)
	}
	n.events, err = events.Open(filepath.Join(c.DataDir, "events.db"), events.Options{Retention: c.Events.Retention, Logger: log})
	if err != nil {
		n.lock.release()
		return nil, fmt.Errorf("open event log: %w", err)
	}
	found, skipRecovery := n.findWorkers()
	n.store, err = storage.Open(storage.Options{
		SkipRecovery:    skipRecovery,
		OnCut:           n.cutWorkerSegments,
		Dir:             c.DataDir,
		Server:          c.Name,
		Segment:         c.Storage.Segment,
		Part:            c.Storage.Part,
		Retention:       c.Storage.Retention,
		MinFreeFraction: c.Storage.MinFreeFraction,
		MinFreeBytes:    c.Storage.MinFreeBytes,
		SyncMethod:      storage.SyncMethod(c.Storage.SyncMethod),
		Logger:          log.With("part", "storage"),
		OnAlarm:         n.onStorageAlarm,
		ObservePartWrite: func(d time.Duration) {
			if m := n.metrics; m != nil {
				m.ObserveSegmentWrite(d)
			}
		},
	})
	if err != nil {
		n.events.Close()
		return nil, fmt.Errorf("open storage: %w", err)
	}
	n.outbox, err = webhook.Open(filepath.Join(c.DataDir, "outbox.db"), webhook.Options{
		Targets: psimTargets(c),
		Client:  webhook.Client(roots),
		Logger:  log.With("part", "webhook"),
		OnAlarm: func(kind events.Type, target, text string) {
			n.appendEvent(webhookEvent(n.cfg.Name, kind, target, text))
		},
	})
	if err != nil {
		n.store.Close()
		n.events.Close()
		return nil, fmt.Errorf("open webhook outbox: %w", err)
	}
	n.auth, err = web.NewAuth(web.AuthOptions{UsersFile: c.HTTP.UsersFile, TokenFile: c.HTTP.TokenFile, GossipKey: c.GossipKey, Logger: log.With("part", "auth")})
	if err == nil {
		err = web.CheckBind(c.Listen.HTTP, n.auth.Configured())
	}
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("http access control: %w", err)
	}
	if name, value := n.auth.PeerHeader(); name != "" {
		n.peerHeader = http.Header{name: {value}}
	}
	if !n.auth.Configured() {
		log.Warn("no [http] users_file or token_file: the page and API are open to anyone who can reach " + c.Listen.HTTP + " (allowed on loopback only)")
	}
	n.metrics = metrics.New(metrics.Options{Source: n, Server: c.Name, Logger: log.With("part", "metrics")})
	cams := c.Capacity.Cameras
	if cams <= 0 {
		cams = max(64, 2*len(c.Cameras))
	}
	n.fds = fileBudget(cams, log)
	httpLn, err := net.Listen("tcp", c.Listen.HTTP)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("listen http %s: %w", c.Listen.HTTP, err)
	}
	n.httpLn = limitListener(httpLn, "http", httpMaxConns, httpMaxPerHost, n.fds, log)
	if n.backfill, err = n.newBackfill(); err != nil {
		httpLn.Close()
		n.closeStores()
		return nil, err
	}
	if n.rec, err = n.newRecorder(found); err != nil {
		n.httpLn.Close()
		n.closeStores()
		return nil, fmt.Errorf("recorder: %w", err)
	}
	// The views exist from New on: the API reads them before Run starts.
	n.startViews()
	return n, nil
}

// storeSink adapts *storage.Store to recorder.Sink.
type storeSink struct{ s *storage.Store }

func (s storeSink) Begin(st storage.Stream) (recorder.SampleWriter, error) {
	w, err := s.s.Begin(st)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Run serves until ctx ends, then stops gracefully: pipelines stop, open
// segments are closed and indexed, the node leaves the cluster.
//
// Run may be called once; after Close it returns ErrClosed.
func (n *Node) Run(ctx context.Context) error {
	c := n.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.runMu.Lock()
	switch {
	case n.closed:
		n.runMu.Unlock()
		return ErrClosed
	case n.runDone != nil:
		n.runMu.Unlock()
		return errors.New("node: Run called twice")
	}
	n.runCancel, n.runDone = cancel, make(chan struct{})
	n.runMu.Unlock()
	defer close(n.runDone)

	var err error
	if c.Listen.Gossip != "" {
		n.cluster, err = buddy.Start(ctx, buddy.Options{
			Name:          c.Name,
			BindAddr:      c.Listen.Gossip,
			Join:          c.Cluster.Join,
			Key:           c.GossipKey,
			Insecure:      c.Cluster.Insecure,
			Keepalive:     c.Cluster.Keepalive,
			FailoverAfter: c.Cluster.FailoverAfter,
			Buddies:       n.config().Failover.Buddies, // a reload before Run may have changed them
			StateDir:      c.DataDir,
			Logger:        n.log.With("part", "buddy"),
			OnKeyMismatch: n.keyMismatch,
			NodeKey:       nil, // data_dir/node.key, made at first start
			CheckRecord:   checkRecordBody,
			ForgetAfter:   c.Cluster.ForgetAfter,
			OnAlarm:       n.buddyAlarm,
		})
		if err != nil {
			n.httpLn.Close()
			n.closeStores()
			return fmt.Errorf("start cluster: %w", err)
		}
		if err := n.cluster.SetSecrets(mustJSON(secretRecord(n.config()))); err != nil {
			n.log.Warn("publish inventory secrets", "err", err)
		}
	}

	if c.Listen.RTSP != "" {
		n.live, err = live.Start(ctx, live.Options{
			Listen:       c.Listen.RTSP,
			Source:       n.site,
			Cameras:      n.siteCameras,
			ViewerLimit:  func() int { return n.config().Capacity.Viewers },
			OtherViewers: n.view.Viewers,
			Authorize:    n.liveAuthorize(),
			WrapListener: func(ln net.Listener) net.Listener {
				return limitListener(ln, "rtsp", rtspMaxConns, rtspMaxPerHost, n.fds, n.log)
			},
			Logger: n.log.With("part", "live"),
		})
		if err != nil {
			if n.cluster != nil {
				n.cluster.Close()
			}
			n.httpLn.Close()
			n.closeStores()
			return fmt.Errorf("start live re-stream on %s: %w", c.Listen.RTSP, err)
		}
	}

	// ErrorLog: failed TLS handshakes and the like go to the structured
	// log with everything else, not to stderr.
	n.httpSrv = httpserver.New(n.Handler(), slog.NewLogLogger(n.log.With("part", "http").Handler(), slog.LevelWarn))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		var err error
		if c.HTTP.CertFile != "" {
			err = n.httpSrv.ServeTLS(n.httpLn, c.HTTP.CertFile, c.HTTP.KeyFile)
		} else {
			err = n.httpSrv.Serve(n.httpLn)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	go func() { defer wg.Done(); n.store.Run(ctx) }()
	go func() { defer wg.Done(); n.events.Run(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); n.backfill.Run(ctx) }()
	go n.outbox.Run(ctx)

	n.log.Info("buddyrec server started", "name", c.Name, "http", n.httpLn.Addr().String(), "gossip", c.Listen.Gossip, "cameras", len(c.Cameras))
	n.appendEvent(events.Event{Server: c.Name, Type: events.TypeServerUp, Severity: events.SeverityInfo, Text: fmt.Sprintf("server %s started", c.Name),
		Resolves: []string{conditionReloadFailed}}) // it started from a config without problems

	if n.onReady != nil {
		go n.awaitReady(ctx, n.onReady)
	}
	n.controlLoop(ctx)

	n.log.Info("stopping")
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	n.httpSrv.Shutdown(shutCtx)
	shutCancel()
	if n.live != nil {
		n.live.Close()
	}
	n.closeViews()
	n.rec.Close()
	if n.cluster != nil {
		n.cluster.Close()
	}
	wg.Wait()
	n.peerClient.CloseIdleConnections()
	n.closeStores()
	n.log.Info("stopped")
	return nil
}

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("node closed")

// Close stops the node: when Run is running it ends it and waits until the
// stop is complete (pipelines stopped, segments closed, cluster left);
// when Run never ran it releases what New opened. Close is idempotent.
func (n *Node) Close() error {
	n.runMu.Lock()
	if n.closed {
		n.runMu.Unlock()
		return nil
	}
	n.closed = true
	cancel, done := n.runCancel, n.runDone
	n.runMu.Unlock()
	if done == nil {
		n.httpLn.Close()
		n.closeViews()
		n.rec.Close()
		n.closeStores()
		return nil
	}
	cancel()
	<-done
	return nil
}

func (n *Node) closeStores() {
	n.outbox.Close()
	n.store.Close()
	n.events.Close()
	n.lock.release()
}

// HTTPAddr is the bound HTTP address (useful with port 0).
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// recordingIDs lists the cameras with a pipeline here: what the live
// re-stream may serve.
func (n *Node) recordingIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return sortedKeys(n.seen.ctl.Recording)
}

// viewers counts live RTSP and browser viewers: they share [capacity]
// viewers.
func (n *Node) viewers() int {
	v := 0
	if n.live != nil {
		v += n.live.Viewers()
	}
	if n.view != nil {
		v += n.view.Viewers()
	}
	return v
}

// liveAuthorize checks RTSP viewers against users_file; without users the
// re-stream is open, like the loopback-only API.
func (n *Node) liveAuthorize() func(remote, user, pass string) bool {
	if n.cfg.HTTP.UsersFile == "" {
		return nil
	}
	return n.auth.CheckUser
}
