package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
)

// Event types raised for what peers say in gossip. They are local until
// events/ names the product's event vocabulary.
const (
	evForgedRecord  = "gossip.forged_record"
	evBadRecord     = "gossip.bad_record"
	evNameConflict  = "server.name_conflict"
	evClockSkew     = "clock.skew"
	evClockOK       = "clock.ok"
	evForgotten     = "server.forgotten"
	evPinForgotten  = "gossip.pin_forgotten"
	evGossipKeyMism = "gossip.key_mismatch"
)

// checkRecordBody is buddy's CheckRecord: a record speaks for the server
// it is filed under only. A body naming another server would let one
// member rewrite what the site believes of another (its cameras,
// capacity, claims), so it is refused before anything plans from it.
func checkRecordBody(server string, body []byte) error {
	r, err := decodeRecord(body)
	if err != nil {
		return err
	}
	if r.Name != server {
		return fmt.Errorf("record filed under %q names server %q", server, r.Name)
	}
	return nil
}

// buddyAlarm turns buddy's alarms into events. buddy calls it from
// gossip callbacks, so the event log write happens on its own goroutine.
func (n *Node) buddyAlarm(a buddy.Alarm) {
	typ, severity := "", "alarm"
	switch a.Kind {
	case buddy.AlarmForgedRecord:
		typ = evForgedRecord
	case buddy.AlarmBadRecord:
		typ = evBadRecord
	case buddy.AlarmNameConflict:
		typ = evNameConflict
	case buddy.AlarmClockSkew:
		typ = evClockSkew
		if a.Cleared {
			typ, severity = evClockOK, "info"
		}
	case buddy.AlarmForgotten:
		typ, severity = evForgotten, "warning"
	default:
		typ = "gossip." + string(a.Kind)
	}
	go n.event(typ, severity, nil, a.Detail)
}

// keyMismatch raises the gossip key alarm, at most once a minute: a peer
// with another key keeps trying. It names the peer's address.
func (n *Node) keyMismatch(addr, detail string) {
	now := time.Now().UnixNano()
	last := n.lastKeyAlarm.Load()
	if now-last < int64(time.Minute) || !n.lastKeyAlarm.CompareAndSwap(last, now) {
		return
	}
	from := "a peer"
	if addr != "" {
		from = "the peer at " + addr
	}
	go n.event(evGossipKeyMism, "alarm", nil, from+" speaks gossip this server cannot read: check that key_file (and insecure) are the same on every server")
}

// ForgetRequest is the body of POST /api/v1/cluster/forget.
type ForgetRequest struct {
	Server string `json:"server"`
}

// ForgetResult answers it.
type ForgetResult struct {
	Server string `json:"server"`
	HadPin bool   `json:"had_pin"`
}

// serveForget clears the node key this server pinned for a server (see
// buddy.Cluster.Forget): `buddyrec forget` calls it for a replaced
// server, whose new key is refused until then.
func (n *Node) serveForget(w http.ResponseWriter, r *http.Request) {
	var req ForgetRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Server == "" {
		writeError(w, http.StatusBadRequest, `body: want {"server": "NAME"}`)
		return
	}
	if n.cluster == nil {
		writeError(w, http.StatusConflict, "this server is standalone (no listen.gossip): it pins no keys")
		return
	}
	had, err := n.cluster.Forget(req.Server)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, buddy.ErrForgetSelf) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	n.event(evPinForgotten, "warning", nil, fmt.Sprintf("node key pinned for %s forgotten (had pin: %v); its next record pins its key anew", req.Server, had))
	writeJSON(w, http.StatusOK, ForgetResult{Server: req.Server, HadPin: had})
}
