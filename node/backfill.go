package node

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/backfill"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/export"
)

// backfillDir holds the copy in progress. Its leading dot keeps it apart
// from the camera folders: storage escapes a leading dot in every server
// name, so no home folder can be called this, and recovery never indexes
// what is in it.
const backfillDir = ".backfill"

// newBackfill prepares the runner that copies back what peers recorded of
// this server's cameras; Run starts it.
func (n *Node) newBackfill() (*backfill.Runner, error) {
	c := n.cfg
	r, err := backfill.New(backfill.Options{
		Store:      n.store,
		Home:       c.Name,
		Cameras:    n.ownCameraIDs,
		Peers:      n.peers,
		Client:     n.peerClient,
		PeerHeader: n.peerHeader,
		Dir:        filepath.Join(c.DataDir, backfillDir),
		Rate:       c.Storage.BackfillMbps * 1e6 / 8,
		RateFor:    n.backfillRateFor(),
		Retention:  c.Storage.Retention,
		Logger:     n.log.With("part", "backfill"),
		OnCompleted: func(e backfill.Episode) {
			n.appendEvent(events.Event{Server: c.Name, Type: events.TypeBackfillCompleted, Severity: events.SeverityInfo,
				Cameras: e.Cameras, Text: backfillText(e)})
		},
	})
	if err != nil {
		return nil, err
	}
	n.metrics.Registry().MustRegister(backfillCollector{r})
	return r, nil
}

// backfillRateFor is the runner's RateFor for backfill_mbps = "auto" (nil
// for a fixed number): half the link that reaches the peer.
func (n *Node) backfillRateFor() func(export.Peer) (float64, string) {
	if !n.cfg.Storage.BackfillAuto {
		return nil
	}
	// The link is looked up once a minute per peer address, not once per
	// segment copied (a route lookup, the interface list and a sysfs read
	// each time). Only the copy goroutine calls this.
	type known struct {
		link backfill.Link
		at   time.Time
	}
	links := map[string]known{}
	return func(p export.Peer) (float64, string) {
		host := p.HTTP
		if u, err := url.Parse(host); err == nil && u.Host != "" {
			host = u.Host // a base URL
		}
		k, ok := links[host]
		if !ok || time.Since(k.at) >= time.Minute {
			l, err := backfill.LinkTo(host, "/sys/class/net")
			if err != nil {
				n.log.Debug("backfill: link to peer not found", "peer", p.Name, "err", err)
			}
			k = known{link: l, at: time.Now()}
			links[host] = k
		}
		return backfill.AutoMbps(k.link) * 1e6 / 8, k.link.String()
	}
}

var (
	descBackfillPending  = prometheus.NewDesc("buddyrec_backfill_pending_bytes", "Bytes of this server's footage a peer holds that are still to be copied back.", []string{"camera", "peer"}, nil)
	descBackfillCopied   = prometheus.NewDesc("buddyrec_backfill_copied_bytes_total", "Bytes copied back from peers since the server started.", nil, nil)
	descBackfillSegments = prometheus.NewDesc("buddyrec_backfill_copied_segments_total", "Segments copied back from peers since the server started.", nil, nil)
	descBackfillRefused  = prometheus.NewDesc("buddyrec_backfill_refused_total", "Copies that failed verification (size or SHA-256) and were discarded.", nil, nil)
)

// backfillCollector exports the runner's status at scrape time.
type backfillCollector struct{ r *backfill.Runner }

func (c backfillCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBackfillPending, descBackfillCopied, descBackfillSegments, descBackfillRefused} {
		ch <- d
	}
}

func (c backfillCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status()
	for _, cam := range st.Cameras {
		ch <- prometheus.MustNewConstMetric(descBackfillPending, prometheus.GaugeValue, float64(cam.PendingBytes), cam.Camera, cam.Peer)
	}
	ch <- prometheus.MustNewConstMetric(descBackfillCopied, prometheus.CounterValue, float64(st.CopiedBytes))
	ch <- prometheus.MustNewConstMetric(descBackfillSegments, prometheus.CounterValue, float64(st.CopiedSegments))
	ch <- prometheus.MustNewConstMetric(descBackfillRefused, prometheus.CounterValue, float64(st.Refused))
}

// backfillText says what an episode copied, for the event log.
func backfillText(e backfill.Episode) string {
	return fmt.Sprintf("copied back from %s what it recorded of %d camera(s) here: %d segments, %s of footage, %.1f MB in %s",
		e.Peer, len(e.Cameras), e.Segments, e.Footage.Round(time.Second), float64(e.Bytes)/1e6, e.Ended.Sub(e.Started).Round(time.Second))
}

// ownCameraIDs lists this server's own cameras.
func (n *Node) ownCameraIDs() []string {
	out := make([]string, 0, len(n.cfg.Cameras))
	for _, c := range n.cfg.Cameras {
		out = append(out, camera.New(n.cfg.Name, c.Name).String())
	}
	return out
}

// Backfill is the state of copying back this server's footage from peers.
func (n *Node) Backfill() api.Backfill { return n.backfill.Status() }

func (n *Node) serveBackfill(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Backfill())
}
