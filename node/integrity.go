package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/events"
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

// buddyEvent is the event a buddy alarm becomes.
func buddyEvent(server string, a buddy.Alarm) events.Event {
	e := events.Event{Server: server, Severity: events.SeverityAlarm, Text: a.Detail}
	switch a.Kind {
	case buddy.AlarmForgedRecord:
		e.Type = events.TypeGossipForgedRecord
	case buddy.AlarmBadRecord:
		e.Type = events.TypeGossipBadRecord
	case buddy.AlarmNameConflict:
		e.Type = events.TypeServerNameConflict
	case buddy.AlarmClockSkew:
		e.Type = events.TypeClockSkew
		if a.Cleared {
			e.Type, e.Severity = events.TypeClockOK, events.SeverityInfo
		}
	case buddy.AlarmForgotten:
		e.Type, e.Severity = events.TypeServerForgotten, events.SeverityWarning
	default:
		e.Type = events.Type("gossip." + string(a.Kind))
	}
	return e
}

// buddyAlarm logs buddy's alarms as events. buddy calls it from gossip
// callbacks, so the event log write happens on its own goroutine.
func (n *Node) buddyAlarm(a buddy.Alarm) { go n.appendEvent(buddyEvent(n.cfg.Name, a)) }

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
	go n.appendEvent(events.Event{Server: n.cfg.Name, Type: events.TypeGossipKeyMismatch, Severity: events.SeverityAlarm,
		Text: from + " speaks gossip this server cannot read: check that key_file (and insecure) are the same on every server"})
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
	n.appendEvent(events.Event{Server: n.cfg.Name, Type: events.TypeGossipPinForgotten, Severity: events.SeverityWarning,
		Text: fmt.Sprintf("node key pinned for %s forgotten (had pin: %v); its next record pins its key anew", req.Server, had)})
	writeJSON(w, http.StatusOK, ForgetResult{Server: req.Server, HadPin: had})
}
