package node

import (
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/backfill"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/events"
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
	return backfill.New(backfill.Options{
		Store:      n.store,
		Home:       c.Name,
		Cameras:    n.ownCameraIDs,
		Peers:      n.peers,
		Client:     n.peerClient,
		PeerHeader: n.peerHeader,
		Dir:        filepath.Join(c.DataDir, backfillDir),
		Rate:       c.Storage.BackfillMbps * 1e6 / 8,
		Retention:  c.Storage.Retention,
		Logger:     n.log.With("part", "backfill"),
		OnCompleted: func(e backfill.Episode) {
			n.appendEvent(events.Event{Server: c.Name, Type: events.TypeBackfillCompleted, Severity: events.SeverityInfo,
				Cameras: e.Cameras, Text: backfillText(e)})
		},
	})
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
