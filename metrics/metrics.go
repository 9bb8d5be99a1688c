// Package metrics exposes buddyrec's Prometheus metrics on its own registry
// (never the global one, so several servers can run in one process for
// tests and demos). Camera, cluster, webhook and disk figures are read from
// a Source at scrape time, so nothing on the recording path pays for them;
// segment write latency and failover counts are pushed by the node.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/internal/buildinfo"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/webhook"
)

// Source is what a scrape reads from the running server. Every method must
// be safe for concurrent use and quick.
type Source interface {
	// Cameras is what this server records now (own and adopted); the same
	// method as web.Source, so one node type serves both.
	Cameras() api.Cameras
	// Cluster is the site as this server sees it, for members by state.
	Cluster() []api.ServerInfo
	// Webhooks describes each webhook target.
	Webhooks() []webhook.TargetStats
	// Disk returns the free and total bytes of the recording volume.
	Disk() (free, total uint64, err error)
}

// cameraStates are the states a camera gauge is exported for; exactly one
// of them is 1 for each camera.
func cameraStates() []string { return recorder.States() }

// memberStates are the gossip states counted by buddyrec_gossip_members.
func memberStates() []string {
	return []string{string(buddy.StateAlive), string(buddy.StateSuspect), string(buddy.StateDead), string(buddy.StateLeft)}
}

// Options configure Metrics.
type Options struct {
	Source Source
	// Server is this server's name, a label of buddyrec_build_info.
	Server string
	// Version is the buddyrec version; empty means the module version from
	// the build info.
	Version string
	// Logger receives scrape problems; nil discards.
	Logger *slog.Logger
}

// Metrics owns the registry and the metrics the node pushes.
type Metrics struct {
	reg          *prometheus.Registry
	segWrite     prometheus.Histogram
	failovers    *prometheus.CounterVec
	failbacks    *prometheus.CounterVec
	log          *slog.Logger
	handler      http.Handler
	scrapeErrors prometheus.Counter
}

// New builds the registry with the Source collector, Go runtime and process
// collectors, and build info.
func New(o Options) *Metrics {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	m.segWrite = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "buddyrec_segment_write_seconds",
		Help: "Time to write and flush one part of a segment file.",
		// 0.5 ms … ~4 s: a healthy disk sits in the first buckets, a dying
		// one in the last.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "buddyrec_failovers_total",
		Help: "Times this server adopted the cameras of a failed home server.",
	}, []string{"home"})
	m.failbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "buddyrec_failbacks_total",
		Help: "Times this server handed adopted cameras back to their home server.",
	}, []string{"home"})
	m.scrapeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "buddyrec_scrape_errors_total",
		Help: "Source reads that failed during a scrape (the affected metrics were left out).",
	})
	// Labels follow the Prometheus convention (prometheus_build_info,
	// node_exporter): version, revision, goversion; dirty says whether the
	// revision alone reproduces the binary.
	bi := buildinfo.Read()
	version := o.Version
	if version == "" {
		version = bi.Version
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "buddyrec_build_info",
		Help: "Always 1; labels name the running build (as `buddyrec version` prints it).",
		ConstLabels: prometheus.Labels{"version": version, "revision": bi.Commit, "dirty": fmt.Sprint(bi.Dirty),
			"goversion": bi.Go, "server": o.Server},
	})
	build.Set(1)
	m.reg.MustRegister(m.segWrite, m.failovers, m.failbacks, m.scrapeErrors, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if o.Source != nil {
		m.reg.MustRegister(&sourceCollector{src: o.Source, log: log, errs: m.scrapeErrors})
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		ErrorLog:          slogAdapter{log},
		Registry:          m.reg,
		Timeout:           10 * time.Second,
		EnableOpenMetrics: false,
	})
	return m
}

// Handler serves /metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry lets the node register further collectors of its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveSegmentWrite records how long one part write took; call it from the
// storage write hook.
func (m *Metrics) ObserveSegmentWrite(d time.Duration) { m.segWrite.Observe(d.Seconds()) }

// Failover counts one adoption of home's cameras by this server.
func (m *Metrics) Failover(home string) { m.failovers.WithLabelValues(home).Inc() }

// Failback counts one return of home's cameras to it.
func (m *Metrics) Failback(home string) { m.failbacks.WithLabelValues(home).Inc() }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	a.l.Warn("metrics", "err", v)
}

var (
	camLabels    = []string{"camera", "home", "recorded_by"}
	descBytes    = prometheus.NewDesc("buddyrec_camera_received_bytes_total", "RTP payload bytes received from the camera.", camLabels, nil)
	descFrames   = prometheus.NewDesc("buddyrec_camera_frames_received_total", "Complete video frames received from the camera.", camLabels, nil)
	descDropped  = prometheus.NewDesc("buddyrec_camera_frames_dropped_total", "Samples dropped because the writer could not keep up.", camLabels, nil)
	descReconn   = prometheus.NewDesc("buddyrec_camera_reconnects_total", "Connection attempts after a failure.", camLabels, nil)
	descBitrate  = prometheus.NewDesc("buddyrec_camera_bitrate_bits_per_second", "Recent received bitrate.", camLabels, nil)
	descState    = prometheus.NewDesc("buddyrec_camera_state", "1 for the camera's current state, 0 for the others.", append(camLabels, "state"), nil)
	descKeyframe = prometheus.NewDesc("buddyrec_camera_last_keyframe_timestamp_seconds", "Unix time of the last key frame written.", camLabels, nil)
	descMembers  = prometheus.NewDesc("buddyrec_gossip_members", "Servers of the site by gossip state, as this server sees them.", []string{"state"}, nil)
	descAdopted  = prometheus.NewDesc("buddyrec_cameras_adopted", "Cameras this server records on behalf of another home.", nil, nil)
	descQueue    = prometheus.NewDesc("buddyrec_webhook_queue_depth", "Notices waiting in the outbox for the target.", []string{"target"}, nil)
	descFailures = prometheus.NewDesc("buddyrec_webhook_failures_total", "Failed delivery attempts to the target.", []string{"target"}, nil)
	descDeliv    = prometheus.NewDesc("buddyrec_webhook_delivered_total", "Notices delivered to the target.", []string{"target"}, nil)
	descGaveUp   = prometheus.NewDesc("buddyrec_webhook_gave_up_total", "Notices dropped after failing for too long.", []string{"target"}, nil)
	descDisabled = prometheus.NewDesc("buddyrec_webhook_target_disabled", "1 if the target is misconfigured and not used.", []string{"target"}, nil)
	descFree     = prometheus.NewDesc("buddyrec_disk_free_bytes", "Free bytes on the recording volume.", nil, nil)
	descTotal    = prometheus.NewDesc("buddyrec_disk_total_bytes", "Size of the recording volume.", nil, nil)
	descStandby  = prometheus.NewDesc("buddyrec_standby_sessions", "Standby sessions this server holds for cameras their home records, by home and mode (hot, mirror), and whether they work (state).", []string{"home", "mode", "state"}, nil)
	descHeld     = prometheus.NewDesc("buddyrec_standby_held_bytes", "Payload bytes a hot standby's ring holds in memory.", []string{"camera", "home"}, nil)
	descHeldSecs = prometheus.NewDesc("buddyrec_standby_held_seconds", "How far back a hot standby's ring reaches.", []string{"camera", "home"}, nil)
	descHeldRes  = prometheus.NewDesc("buddyrec_standby_resident_bytes", "Memory a hot standby's ring occupies (whole pages, outside the Go heap).", []string{"camera", "home"}, nil)
)

// sourceCollector reads the Source at scrape time.
type sourceCollector struct {
	src  Source
	log  *slog.Logger
	errs prometheus.Counter
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytes, descFrames, descDropped, descReconn, descBitrate, descState, descKeyframe,
		descMembers, descAdopted, descQueue, descFailures, descDeliv, descGaveUp, descDisabled, descFree, descTotal,
		descStandby, descHeld, descHeldSecs, descHeldRes} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[[3]string]bool{}
	adopted := 0
	cams := c.src.Cameras()
	c.standby(ch, cams.Standby)
	for _, cam := range cams.Cameras {
		lv := [3]string{cam.ID, cam.Home, cam.RecordedBy}
		if cam.ID == "" || seen[lv] {
			// A duplicate would make the whole scrape fail.
			c.log.Warn("metrics: skipping duplicate or unnamed camera", "camera", cam.ID)
			continue
		}
		seen[lv] = true
		if cam.Home != cam.RecordedBy {
			adopted++
		}
		l := lv[:]
		c.emit(ch, descBytes, prometheus.CounterValue, float64(cam.BytesReceived), l...)
		c.emit(ch, descFrames, prometheus.CounterValue, float64(cam.FramesReceived), l...)
		c.emit(ch, descDropped, prometheus.CounterValue, float64(cam.FramesDropped), l...)
		c.emit(ch, descReconn, prometheus.CounterValue, float64(cam.Reconnects), l...)
		c.emit(ch, descBitrate, prometheus.GaugeValue, cam.BitrateBps, l...)
		if !cam.LastKeyframe.IsZero() {
			c.emit(ch, descKeyframe, prometheus.GaugeValue, float64(cam.LastKeyframe.UnixNano())/1e9, l...)
		}
		states := cameraStates()
		known := false
		for _, s := range states {
			known = known || s == cam.State
		}
		if !known && cam.State != "" {
			states = append(states, cam.State)
		}
		for _, s := range states {
			v := 0.0
			if s == cam.State {
				v = 1
			}
			c.emit(ch, descState, prometheus.GaugeValue, v, append(l, s)...)
		}
	}
	c.emit(ch, descAdopted, prometheus.GaugeValue, float64(adopted))

	members := map[string]int{}
	for _, s := range memberStates() {
		members[s] = 0
	}
	for _, s := range c.src.Cluster() {
		st := string(s.State)
		if st == "" {
			st = "unknown"
		}
		members[st]++
	}
	for s, n := range members {
		c.emit(ch, descMembers, prometheus.GaugeValue, float64(n), s)
	}

	targets := map[string]bool{}
	for _, t := range c.src.Webhooks() {
		if targets[t.Name] {
			continue
		}
		targets[t.Name] = true
		c.emit(ch, descQueue, prometheus.GaugeValue, float64(t.Pending), t.Name)
		c.emit(ch, descFailures, prometheus.CounterValue, float64(t.Failures), t.Name)
		c.emit(ch, descDeliv, prometheus.CounterValue, float64(t.Delivered), t.Name)
		c.emit(ch, descGaveUp, prometheus.CounterValue, float64(t.GaveUp), t.Name)
		dis := 0.0
		if t.Disabled {
			dis = 1
		}
		c.emit(ch, descDisabled, prometheus.GaugeValue, dis, t.Name)
	}

	free, total, err := c.src.Disk()
	if err != nil {
		c.errs.Inc()
		c.log.Warn("metrics: disk usage unavailable", "err", err)
		return
	}
	c.emit(ch, descFree, prometheus.GaugeValue, float64(free))
	c.emit(ch, descTotal, prometheus.GaugeValue, float64(total))
}

// emit sends one metric; a label value Prometheus refuses (invalid UTF-8
// from a bad config) drops that metric only, never the scrape.
func (c *sourceCollector) emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		c.errs.Inc()
		c.log.Warn("metrics: dropping metric", "err", err)
		return
	}
	ch <- m
}

// standby exports the standby sessions: a count per home, mode and state,
// and each hot ring's size.
func (c *sourceCollector) standby(ch chan<- prometheus.Metric, sessions []api.CameraInfo) {
	count := map[[3]string]int{}
	seen := map[string]bool{}
	for _, s := range sessions {
		count[[3]string{s.Home, s.Standby, s.State}]++
		if s.Standby == string(recorder.StandbyHot) && !seen[s.ID] {
			seen[s.ID] = true
			c.emit(ch, descHeld, prometheus.GaugeValue, float64(s.HeldBytes), s.ID, s.Home)
			c.emit(ch, descHeldSecs, prometheus.GaugeValue, s.HeldSeconds, s.ID, s.Home)
			c.emit(ch, descHeldRes, prometheus.GaugeValue, float64(s.ResidentBytes), s.ID, s.Home)
		}
	}
	for k, n := range count {
		c.emit(ch, descStandby, prometheus.GaugeValue, float64(n), k[0], k[1], k[2])
	}
}
