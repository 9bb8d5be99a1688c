package node

import (
	"net/http"
	"slices"

	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/relay"
	"github.com/buddyrec/buddyrec/view"
)

// The browser view and the live relay: any server shows any camera of the
// site. This file gathers what they need from the node's state (who records
// which camera, what a camera is) and nothing else decides here.

// startViews makes the site-wide live source and the browser view; New
// calls it, so the API can count viewers before Run starts.
func (n *Node) startViews() {
	n.site = relay.NewSite(relay.Options{
		Local:  n.rec,
		Locate: n.locate,
		Client: n.peerClient,
		Authorize: func(r *http.Request) {
			for k, v := range n.peerHeader {
				r.Header[k] = v
			}
		},
		Logger: n.log.With("part", "relay"),
	})
	n.view = view.New(view.Options{
		Source: n.site,
		Camera: n.viewCamera,
		Admit:  n.admitViewer,
		Logger: n.log.With("part", "view"),
	})
}

func (n *Node) closeViews() {
	if n.view != nil {
		n.view.Close()
	}
	if n.site != nil {
		n.site.Close()
	}
}

// locate says who records camera id now: this server when it has a
// pipeline for it, else the live peer whose record says it records it
// (preferring the one whose plan claims it, during a handover).
func (n *Node) locate(id string) (relay.Location, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen.ctl.Recording[id] {
		return relay.Location{Server: n.cfg.Name, Local: true}, true
	}
	best, bestScore := "", 0
	for _, name := range sortedKeys(n.seen.ctl.Records) {
		r := n.seen.ctl.Records[name] // stale claims already removed
		if name == n.cfg.Name || !n.seen.ctl.Alive[name] || n.seen.records[name].HTTP == "" || !slices.Contains(r.Recording, id) {
			continue
		}
		score := 1
		if slices.Contains(r.Claims, id) {
			score = 2
		}
		if score > bestScore {
			best, bestScore = name, score
		}
	}
	if best == "" {
		return relay.Location{}, false
	}
	return relay.Location{Server: best, URL: n.peerScheme() + "://" + n.seen.records[best].HTTP}, true
}

// isRecording reports whether this server records camera id now: what the
// relay endpoint serves to peers.
func (n *Node) isRecording(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen.ctl.Recording[id]
}

// siteCameras lists every camera a live server of the site records now:
// what the live RTSP re-stream and the view may serve from here.
func (n *Node) siteCameras() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	set := map[string]bool{}
	for id := range n.seen.ctl.Recording {
		set[id] = true
	}
	for name, r := range n.seen.ctl.Records {
		if name != n.cfg.Name && n.seen.ctl.Alive[name] {
			for _, id := range r.Recording {
				set[id] = true
			}
		}
	}
	return sortedKeys(set)
}

// viewCamera describes a camera of the site for the view page; a camera
// no server of the site has in its inventory is unknown.
func (n *Node) viewCamera(id string) (view.Camera, bool) {
	cid, err := camera.Parse(id)
	if err != nil {
		return view.Camera{}, false
	}
	home, name := cid.Home, cid.Name
	n.mu.Lock()
	r, ok := n.seen.records[home]
	n.mu.Unlock()
	known := false
	if home == n.cfg.Name {
		for _, c := range n.config().Cameras {
			known = known || c.Name == name
		}
	} else if ok {
		for _, c := range r.Cameras {
			known = known || c.Name == name
		}
	}
	if !known {
		return view.Camera{}, false
	}
	cam := view.Camera{ID: id}
	if loc, ok := n.locate(id); ok {
		cam.RecordedBy = loc.Server
	}
	for _, s := range n.rec.Status() {
		if s.ID == id {
			cam.Codec = s.Codec
		}
	}
	if n.cfg.Listen.RTSP != "" {
		cam.LiveURL = "rtsp://" + n.cfg.Listen.RTSP + "/" + id
	}
	return cam, true
}

// admitViewer takes one of [capacity] viewers for a browser viewer; RTSP
// and browser viewers share the limit.
func (n *Node) admitViewer() (func(), bool) {
	limit := n.config().Capacity.Viewers
	if limit > 0 && n.viewers() >= limit {
		return nil, false
	}
	return func() {}, true
}
