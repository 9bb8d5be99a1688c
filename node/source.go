package node

import (
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/webhook"
)

// The methods below make a Node the source of the status page (web.Source)
// and of /metrics (metrics.Source).

// Self is this server's name.
func (n *Node) Self() string { return n.cfg.Name }

// Cluster is the site as this server sees it.
func (n *Node) Cluster() []api.ServerInfo { return n.ClusterView() }

// Timeline lists the footage in this server's index per camera.
func (n *Node) Timeline(from, to time.Time) (map[string][]api.Span, error) {
	cams, err := n.store.Cameras()
	if err != nil {
		return nil, err
	}
	out := map[string][]api.Span{}
	for _, cam := range cams {
		spans, err := n.store.Spans(cam, from, to)
		if err != nil {
			return nil, err
		}
		if len(spans) == 0 {
			continue
		}
		list := make([]api.Span, 0, len(spans))
		for _, s := range spans {
			list = append(list, api.Span{Start: s.Start.UTC(), End: s.End.UTC(), RecordedBy: s.RecordedBy})
		}
		out[cam] = list
	}
	return out, nil
}

// Events is the newest events of this server's log.
func (n *Node) Events(limit int) ([]events.Event, error) {
	evs, _, err := n.events.List(time.Time{}, "", limit)
	return evs, err
}

// Ack acknowledges an alarm.
func (n *Node) Ack(id, by string) error { return n.events.Ack(id, by) }

// Webhooks reports the PSIM targets' queues.
func (n *Node) Webhooks() []webhook.TargetStats { return n.outbox.Stats() }

// Disk reports the data folder's free and total bytes.
func (n *Node) Disk() (free, total uint64, err error) {
	used, total := diskUsage(n.cfg.DataDir)
	return total - used, total, nil
}
