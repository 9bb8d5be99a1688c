package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/atomicfile"
	"github.com/buddyrec/buddyrec/web"
	"github.com/buddyrec/buddyrec/webhook"
)

// maintenanceFile keeps a drain across restarts: a server an installer
// put in maintenance must not pull its cameras back because it was
// rebooted for the work the drain was for. It lives in data_dir, beside
// the footage it concerns, and is written atomically.
const maintenanceFile = "maintenance.json"

// maintenance is this server's drain state. Stopping is the drain a
// clean stop does first; it is not persisted (a restarted server records
// its cameras again).
type maintenance struct {
	On       bool      `json:"maintenance"`
	Since    time.Time `json:"since"`
	By       string    `json:"by,omitempty"`
	stopping bool
}

func (m maintenance) draining() bool { return m.On || m.stopping }

// loadMaintenance reads data_dir/maintenance.json; a missing file is no
// maintenance, an unreadable one is an error naming it.
func loadMaintenance(dir string) (maintenance, error) {
	var m maintenance
	p := filepath.Join(dir, maintenanceFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w (delete it to leave maintenance)", p, err)
	}
	return m, nil
}

// saveMaintenance writes m durably (atomicfile: temp file, fsync,
// rename, fsync dir).
func saveMaintenance(dir string, m maintenance) error {
	b, _ := json.Marshal(m)
	return atomicfile.WriteFile(filepath.Join(dir, maintenanceFile), append(b, '\n'), 0o640)
}

// SetMaintenance puts this server in maintenance (on) or takes it out:
// the control loop then hands its cameras to the buddies the planner
// picks, make-before-break, or takes them back the same way. The state
// is persisted before it takes effect. by names who asked, for the log.
func (n *Node) SetMaintenance(on bool, by string) error {
	if n.cfg.Listen.Gossip == "" {
		return errStandalone
	}
	n.maintMu.Lock()
	defer n.maintMu.Unlock()
	m := n.maint
	if m.On == on {
		return nil
	}
	m.On, m.By = on, by
	m.Since = time.Now().UTC()
	if err := saveMaintenance(n.cfg.DataDir, m); err != nil {
		return err
	}
	n.maint = m
	if on {
		n.log.Warn("maintenance: draining this server; its cameras move to its buddies", "by", by)
	} else {
		n.log.Info("maintenance ended; this server takes its cameras back", "by", by)
	}
	return nil
}

func (n *Node) maintenanceState() maintenance {
	n.maintMu.Lock()
	defer n.maintMu.Unlock()
	return n.maint
}

// Maintenance reports where this server's maintenance stands.
func (n *Node) Maintenance() api.Maintenance {
	m := n.maintenanceState()
	n.mu.Lock()
	st := n.seen.ctl
	n.mu.Unlock()
	out := api.Maintenance{Server: n.cfg.Name, Maintenance: m.On, Stopping: m.stopping, By: m.By}
	if !m.Since.IsZero() {
		t := m.Since.UTC()
		out.Since = &t
	}
	if d := st.Drain; d != nil && m.draining() {
		out.Complete, out.Moved, out.Kept, out.Unplaced = d.Complete, d.Moved, d.Kept, d.Unplaced
	} else if !m.draining() {
		out.Complete = !st.Reclaiming()
	}
	return out
}

// DrainForStop hands this server's cameras over before it stops, as
// SIGTERM and a restart do: the drain is not persisted. It returns once
// every camera that can move records elsewhere, or when ctx ends (the
// drain timeout, a second signal). A standalone server has nobody to
// hand to and returns at once.
func (n *Node) DrainForStop(ctx context.Context) api.Maintenance {
	if n.cluster == nil {
		return n.Maintenance()
	}
	n.maintMu.Lock()
	n.maint.stopping = true
	// Already drained for maintenance: the drain the loop keeps is this
	// one; otherwise wait for the loop to step with the stop's drain.
	drained := n.maint.On
	n.maintMu.Unlock()
	n.log.Info("stopping: handing cameras to buddies first (make-before-break)", "drain_timeout", n.DrainTimeout())
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	started := time.Now()
	for {
		m := n.Maintenance()
		if m.Complete && (drained || n.drainSeenSince(started)) {
			n.log.Info("stopping: cameras handed over", "moved", len(m.Moved), "kept", len(m.Kept), "took", time.Since(started).Round(time.Millisecond))
			return m
		}
		select {
		case <-ctx.Done():
			n.log.Warn("stopping before every camera was handed over", "kept", m.Kept, "took", time.Since(started).Round(time.Millisecond))
			return m
		case <-tick.C:
		}
	}
}

// drainSeenSince: the control loop has stepped with the drain on after t,
// so the drain status it keeps is about this drain.
func (n *Node) drainSeenSince(t time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.seen.ctl.Drain
	return d != nil && !d.Since.Before(t)
}

// serveDrain answers POST /api/v1/drain and /api/v1/undrain: it sets the
// maintenance and answers 202 with the state; GET /api/v1/drain polls it.
func (n *Node) serveDrain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by := web.Identity(r.Context())
		if by == "" {
			by = web.IdentityOpen
		}
		if err := n.SetMaintenance(on, by); errors.Is(err, errStandalone) {
			writeError(w, http.StatusConflict, err.Error())
			return
		} else if err != nil {
			n.log.Error("set maintenance", "err", err)
			writeError(w, http.StatusInternalServerError, "could not persist the maintenance state in data_dir")
			return
		}
		writeJSON(w, http.StatusAccepted, n.Maintenance())
	}
}

func (n *Node) serveMaintenance(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Maintenance())
}

// movedCameras names, for a server.maintenance notice, each camera with
// the server recording it now, that server's address and the camera's
// live URL there, from the peer's record.
func (n *Node) movedCameras(ids []string, moved map[string]string) []webhook.Camera {
	n.mu.Lock()
	records := n.seen.records
	n.mu.Unlock()
	out := make([]webhook.Camera, 0, len(ids))
	for _, id := range ids {
		owner := moved[id]
		c := webhook.Camera{ID: id, Server: owner}
		if rec, ok := records[owner]; ok && rec.HTTP != "" {
			httpAddr := reachableVia(rec.HTTP, rec.Gossip)
			host, _, _ := net.SplitHostPort(httpAddr)
			c.Address = &webhook.Address{IP: host, HTTP: n.peerScheme() + "://" + httpAddr}
			if rec.RTSP != "" {
				rtsp := reachableVia(rec.RTSP, rec.Gossip)
				c.Address.RTSP = "rtsp://" + rtsp
				c.LiveURL = "rtsp://" + rtsp + "/" + id
			}
		}
		out = append(out, c)
	}
	return out
}

// reachableVia turns a peer's listen address into one others can dial: a
// wildcard host is replaced by the host the peer gossips from.
func reachableVia(listen, gossip string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	if h, _, err := net.SplitHostPort(gossip); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			return net.JoinHostPort(h, port)
		}
	}
	return listen
}

var errStandalone = errors.New("this server is standalone (no listen.gossip): it has no buddies to hand its cameras to")

// Restart drains this server, then restarts its process, through the
// Options.Restart the command gave; web.ErrNoRestart without one.
func (n *Node) Restart(by string) error {
	if n.restart == nil {
		return web.ErrNoRestart
	}
	n.log.Warn("restart asked", "by", by)
	return n.restart(by)
}

// serveRestart answers POST /api/v1/restart: 202, then the drain and the
// restart happen; the server answers again once it is back.
func (n *Node) serveRestart(w http.ResponseWriter, r *http.Request) {
	by := web.Identity(r.Context())
	if by == "" {
		by = web.IdentityOpen
	}
	if err := n.Restart(by); errors.Is(err, web.ErrNoRestart) {
		writeError(w, http.StatusNotImplemented, err.Error())
		return
	} else if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "restarting: handing cameras over first"})
}

// DrainTimeout bounds the drain of a clean stop: [cluster] drain_timeout
// of the config in force.
func (n *Node) DrainTimeout() time.Duration { return n.config().Cluster.DrainTimeout }
