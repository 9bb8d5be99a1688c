package node

import (
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/events"
)

// TestCheckRecordBody: a record speaks for the server it is filed under.
func TestCheckRecordBody(t *testing.T) {
	for _, tc := range []struct {
		server, body string
		ok           bool
	}{
		{"rec-a", `{"name":"rec-a","cameras":[]}`, true},
		{"x", `{"name":"rec-a","cameras":[]}`, false}, // the observed intruder
		{"rec-a", `{"cameras":[]}`, false},            // no name
		{"rec-a", `{"name":"REC-A"}`, false},
		{"rec-a", `not json`, false},
	} {
		err := checkRecordBody(tc.server, []byte(tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("checkRecordBody(%q, %s) = %v, want ok=%v", tc.server, tc.body, err, tc.ok)
		}
		if err != nil && !tc.ok && strings.Contains(tc.body, `"name"`) && !strings.Contains(err.Error(), tc.server) {
			t.Errorf("error %q does not name the server %q", err, tc.server)
		}
	}
}

// TestBuddyAlarmsBecomeEvents: buddy's alarms reach the event log with
// the product's event types, naming server and address.
func TestBuddyAlarmsBecomeEvents(t *testing.T) {
	n := newTestNode(t)
	for _, a := range []buddy.Alarm{
		{Kind: buddy.AlarmForgedRecord, Server: "rec-b", Addr: "127.0.0.9:7946", Detail: "refused a record for rec-b signed by the key of x at 127.0.0.9:7946"},
		{Kind: buddy.AlarmNameConflict, Server: "rec-a", Addr: "127.0.0.8:7946", Detail: `another server at 127.0.0.8:7946 uses this server's name "rec-a"`},
		{Kind: buddy.AlarmClockSkew, Server: "rec-c", Detail: "the clock of rec-c (127.0.0.7:7946) is +2s ahead"},
		{Kind: buddy.AlarmClockSkew, Server: "rec-c", Detail: "the clock of rec-c is back", Cleared: true},
	} {
		n.buddyAlarm(a)
	}
	want := map[events.Type]string{events.TypeGossipForgedRecord: "127.0.0.9:7946", events.TypeServerNameConflict: "127.0.0.8:7946", events.TypeClockSkew: "rec-c", events.TypeClockOK: "rec-c"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, _ := n.Events(50)
		got := map[events.Type]string{}
		for _, e := range evs {
			got[e.Type] = e.Text
		}
		missing := ""
		for typ, sub := range want {
			if !strings.Contains(got[typ], sub) {
				missing += string(typ) + " "
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events missing or wrong: %s (have %v)", missing, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
