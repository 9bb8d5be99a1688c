package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/web"
)

// TestAckRecordsAuthenticatedUser: an acknowledgement over the API is
// recorded under the user who logged in, not under the by its body claims;
// an API token is recorded as the token, naming the client's operator.
func TestAckRecordsAuthenticatedUser(t *testing.T) {
	dir := t.TempDir()
	hash, err := web.HashPassword("alice-password")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice:"+hash+"\n"), 0o600)
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("psim-token-0123456789abcdef\n"), 0o600)
	n, _ := startNode(t, "rec-a", fmt.Sprintf("[http]\nusers_file = %q\ntoken_file = %q\n", users, token))
	ack := func(auth func(*http.Request), by string) events.Event {
		t.Helper()
		e, err := n.events.Append(events.Event{Type: events.TypeCameraOffline, Severity: events.SeverityAlarm, Server: "rec-a", Text: "test alarm"})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+"/api/v1/events/"+e.ID+"/ack", strings.NewReader(`{"by":"`+by+`"}`))
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got events.Event
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&got) != nil {
			t.Fatalf("ack: %s", resp.Status)
		}
		return got
	}
	asAlice := func(r *http.Request) { r.SetBasicAuth("alice", "alice-password") }
	asToken := func(r *http.Request) { r.Header.Set("Authorization", "Bearer psim-token-0123456789abcdef") }
	if e := ack(asAlice, "bob"); e.AckedBy != "alice" {
		t.Errorf("alice claiming to be bob: acked_by %q, want alice", e.AckedBy)
	}
	if e := ack(asAlice, ""); e.AckedBy != "alice" {
		t.Errorf("alice without by: acked_by %q, want alice", e.AckedBy)
	}
	if e := ack(asToken, "op-7"); e.AckedBy != "api-token for op-7" {
		t.Errorf("token: acked_by %q, want \"api-token for op-7\"", e.AckedBy)
	}
}

// TestOutOfRangeTimes: every endpoint taking a time answers 400 naming the
// parameter for a time the index cannot represent, instead of wrapping it
// around into "no footage".
func TestOutOfRangeTimes(t *testing.T) {
	n, _ := startNode(t, "rec-a", "")
	for _, tc := range []struct{ path, param, value string }{
		{"/api/v1/recordings?camera=rec-a/cam1&to=2026-01-01T00:00:00Z&from=", "from", "0000-01-01T00:00:00Z"},
		{"/api/v1/recordings?camera=rec-a/cam1&from=2026-01-01T00:00:00Z&to=", "to", "9999-12-31T00:00:00Z"},
		{"/api/v1/recordings?camera=rec-a/cam1&from=", "from", "99999-01-01T00:00:00Z"},
		{"/api/v1/timeline?to=2026-01-01T00:00:00Z&from=", "from", "0001-01-01T00:00:00Z"},
		{"/api/v1/export?camera=rec-a/cam1&to=2026-01-01T00:00:00Z&from=", "from", "0000-01-01T00:00:00Z"},
		{"/api/v1/export?camera=rec-a/cam1&from=2026-01-01T00:00:00Z&to=", "to", "3000-01-01T00:00:00Z"},
		{"/api/v1/events?since=", "since", "0000-01-01T00:00:00Z"},
	} {
		u := "http://" + n.HTTPAddr() + tc.path + url.QueryEscape(tc.value)
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		if resp.StatusCode != 400 || !strings.HasPrefix(e.Error, tc.param+": ") || !strings.Contains(e.Error, tc.value) {
			t.Errorf("GET %s: %d %s; want 400 with an error naming %s and the value", tc.path+tc.value, resp.StatusCode, b, tc.param)
		}
	}
}
