package node

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/failover"
)

// recordBody is what a server replicates to every member of the site: the
// public half of its inventory (no credentials), its failover policy, and
// what it records now. Every server plans from these, so they hold exactly
// what the planner needs.
type recordBody struct {
	Name      string         `json:"name"`
	HTTP      string         `json:"http,omitempty"`
	RTSP      string         `json:"rtsp,omitempty"`
	Gossip    string         `json:"gossip,omitempty"`
	Capacity  api.Capacity   `json:"capacity"`
	Buddies   []string       `json:"buddies,omitempty"`
	Mode      string         `json:"mode"`
	Failback  bool           `json:"failback"`
	Cameras   []publicCamera `json:"cameras"`
	Aspects   []aspectRef    `json:"aspects,omitempty"`
	Claims    []string       `json:"claims,omitempty"`    // camera ids my plan assigns to me
	Recording []string       `json:"recording,omitempty"` // camera ids with a pipeline running here
	// Durable maps camera ids recorded here to the first durable frame of
	// their pipeline's current run: what make-before-break waits for.
	Durable map[string]time.Time `json:"durable,omitempty"`
	// Maintenance: draining; Reclaim: taking its cameras back after it.
	Maintenance bool      `json:"maintenance,omitempty"`
	Reclaim     bool      `json:"reclaim,omitempty"`
	Stable      bool      `json:"stable"` // up for failback_after: my cameras may come home
	StartedAt   time.Time `json:"started_at"`
	ConfigHash  string    `json:"config_hash"`
	Timing      string    `json:"timing"`             // keepalive/failover_after: must agree across the site
	Standby     string    `json:"standby,omitempty"`  // [failover] standby for my critical cameras
	Standbys    []string  `json:"standbys,omitempty"` // camera ids I hold a standby session for
	Live        []string  `json:"live,omitempty"`     // camera ids my pipelines record now (keyframes reach storage)
	Load        api.Load  `json:"load"`
}

type publicCamera struct {
	Name        string  `json:"name"`
	Critical    bool    `json:"critical,omitempty"`
	BitrateMbps float64 `json:"bitrate_mbps"`
}

type aspectRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// secretBody is what a server sends only to its buddies: how to reach its
// cameras (URLs with credentials) and its aspects' parameters.
type secretBody struct {
	Cameras []secretCamera  `json:"cameras"`
	Aspects []config.Aspect `json:"aspects,omitempty"`
}

type secretCamera struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Transport string `json:"transport"`
}

func publicRecord(c *config.Config, started time.Time) recordBody {
	r := recordBody{
		Name:      c.Name,
		HTTP:      c.Listen.HTTP,
		RTSP:      c.Listen.RTSP,
		Gossip:    c.Listen.Gossip,
		Capacity:  api.Capacity{Cameras: c.Capacity.Cameras, BitrateMbps: c.Capacity.BitrateMbps, Viewers: c.Capacity.Viewers},
		Buddies:   c.Failover.Buddies,
		Mode:      c.Failover.Cameras,
		Failback:  c.Cluster.Failback,
		Cameras:   []publicCamera{},
		StartedAt: started.UTC(),
		Timing:    c.Cluster.Keepalive.String() + "/" + c.Cluster.FailoverAfter.String(),
		Standby:   c.Failover.Standby,
	}
	for _, cam := range c.Cameras {
		r.Cameras = append(r.Cameras, publicCamera{Name: cam.Name, Critical: cam.Critical, BitrateMbps: cam.BitrateMbps})
	}
	for _, a := range c.Aspects {
		r.Aspects = append(r.Aspects, aspectRef{Kind: a.Kind, Name: a.Name})
	}
	return r
}

func secretRecord(c *config.Config) secretBody {
	s := secretBody{Cameras: []secretCamera{}, Aspects: c.Aspects}
	for _, cam := range c.Cameras {
		s.Cameras = append(s.Cameras, secretCamera{Name: cam.Name, URL: cam.URL, Transport: cam.Transport})
	}
	return s
}

func decodeRecord(body []byte) (recordBody, error) {
	var r recordBody
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("decode record: %w", err)
	}
	return r, nil
}

// rulesRecord turns a replicated record into what the control rules read.
func (r recordBody) rulesRecord(version uint64) control.Record {
	s := control.Record{
		Name:        r.Name,
		Version:     version,
		Capacity:    failover.Capacity{Cameras: r.Capacity.Cameras, BitrateMbps: r.Capacity.BitrateMbps},
		Buddies:     r.Buddies,
		Mode:        r.Mode,
		Failback:    r.Failback,
		Claims:      r.Claims,
		Recording:   r.Recording,
		Durable:     r.Durable,
		Stable:      r.Stable,
		Maintenance: r.Maintenance,
		Reclaim:     r.Reclaim,
		Timing:      r.Timing,
		Standby:     r.Standby,
		Standbys:    r.Standbys,
		Live:        r.Live,
	}
	for _, c := range r.Cameras {
		s.Cameras = append(s.Cameras, failover.Camera{Name: c.Name, Critical: c.Critical, BitrateMbps: c.BitrateMbps})
	}
	for _, a := range r.Aspects {
		s.Aspects = append(s.Aspects, control.Aspect{Kind: a.Kind, Name: a.Name})
	}
	return s
}
