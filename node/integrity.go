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

// Event types raised for what peers say in gossip and for their clocks.
// They live here until events/ lists them beside the others.
const (
	// evForgedRecord: a record or secrets signed by another key
	// than the one pinned for their server (a member speaking for
	// another, or a replaced server: `buddyrec forget`).
	evForgedRecord events.Type = "gossip.forged_record"
	// evBadRecord: a record refused for what it says (unsigned, version
	// out of range, a body naming another server).
	evBadRecord events.Type = "gossip.bad_record"
	// evNameConflict: another server uses this server's name.
	evNameConflict events.Type = "server.name_conflict"
	evClockSkew    events.Type = "clock.skew"
	evClockOK      events.Type = "clock.ok"
	// evForgotten: a server gone longer than forget_after was forgotten.
	evForgotten    events.Type = "server.forgotten"
	evPinForgotten events.Type = "gossip.pin_forgotten"
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
		e.Type = evForgedRecord
	case buddy.AlarmBadRecord:
		e.Type = evBadRecord
	case buddy.AlarmNameConflict:
		e.Type = evNameConflict
	case buddy.AlarmClockSkew:
		e.Type = evClockSkew
		if a.Cleared {
			e.Type, e.Severity = evClockOK, events.SeverityInfo
		}
	case buddy.AlarmForgotten:
		e.Type, e.Severity = evForgotten, events.SeverityWarning
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
	n.appendEvent(events.Event{Server: n.cfg.Name, Type: evPinForgotten, Severity: events.SeverityWarning,
		Text: fmt.Sprintf("node key pinned for %s forgotten (had pin: %v); its next record pins its key anew", req.Server, had)})
	writeJSON(w, http.StatusOK, ForgetResult{Server: req.Server, HadPin: had})
}
