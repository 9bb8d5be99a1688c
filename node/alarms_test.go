package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/webhook"
)

func TestStorageEvent(t *testing.T) {
	tests := []struct {
		name     string
		alarm    storage.Alarm
		typ      events.Type
		severity events.Severity
		cameras  int
	}{
		{"disk full", storage.Alarm{Kind: storage.AlarmDiskFull, Camera: "rec-a/lobby", Err: "no space"}, events.TypeDiskFull, events.SeverityAlarm, 1},
		{"disk low", storage.Alarm{Kind: storage.AlarmDiskLow}, events.TypeDiskLow, events.SeverityAlarm, 0},
		{"write error", storage.Alarm{Kind: storage.AlarmWriteError, Camera: "rec-a/lobby"}, events.TypeStorageWriteError, events.SeverityAlarm, 1},
		{"writes work again", storage.Alarm{Kind: storage.AlarmRecovered, Camera: "rec-a/lobby"}, events.TypeStorageRecovered, events.SeverityInfo, 1},
		// after every kill -9 recovery closes the open segments: routine
		{"recovery without loss", storage.Alarm{Kind: storage.AlarmRecovery, Err: "closed 2 open segments (0 truncated)"}, events.TypeStorageRecovery, events.SeverityInfo, 0},
		{"recovery that cut footage", storage.Alarm{Kind: storage.AlarmRecovery, Lost: true, Err: "closed 2 open segments (1 truncated)"}, events.TypeStorageRecovery, events.SeverityAlarm, 0},
	}
	for _, tt := range tests {
		e := storageEvent("rec-a", tt.alarm)
		if e.Type != tt.typ || e.Severity != tt.severity || len(e.Cameras) != tt.cameras || e.Server != "rec-a" {
			t.Errorf("%s: event %+v, want type %s severity %s with %d camera(s)", tt.name, e, tt.typ, tt.severity, tt.cameras)
		}
		if !strings.Contains(e.Text, tt.alarm.Err) {
			t.Errorf("%s: text %q lost the detail %q", tt.name, e.Text, tt.alarm.Err)
		}
	}
}

// TestWebhookDisabledEventType: a PSIM answering 410 Gone is logged as
// webhook.disabled (it was webhook.webhook.disabled).
func TestWebhookDisabledEventType(t *testing.T) {
	psim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer psim.Close()
	secret := filepath.Join(t.TempDir(), "psim.secret")
	if err := os.WriteFile(secret, []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, _ := startNode(t, "rec-a", fmt.Sprintf("[[psim]]\nurl = %q\nsecret_file = %q\n", psim.URL, secret))
	n.notify(webhook.Notice{Type: string(events.TypeServerDown), FailedServer: "rec-b"})
	var got []events.Type
	waitFor(t, 10*time.Second, "a webhook alarm in the event log", func() bool {
		list, _, err := n.events.List(time.Time{}, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range list {
			if strings.HasPrefix(string(e.Type), "webhook.") {
				got = append(got, e.Type)
			}
		}
		return len(got) > 0
	})
	if len(got) != 1 || got[0] != events.TypeWebhookDisabled {
		t.Fatalf("webhook events %q, want one %q", got, events.TypeWebhookDisabled)
	}
}

// TestStorageAlarmsResolve: writes working again resolve the write error
// and the full disk of that camera's writer in the event log.
func TestStorageAlarmsResolve(t *testing.T) {
	n := newTestNode(t)
	n.onStorageAlarm(storage.Alarm{Kind: storage.AlarmWriteError, Camera: "rec-a/lobby", Err: "EIO"})
	n.onStorageAlarm(storage.Alarm{Kind: storage.AlarmDiskFull, Camera: "rec-a/lobby", Err: "ENOSPC"})
	n.onStorageAlarm(storage.Alarm{Kind: storage.AlarmDiskFull, Camera: "rec-a/dock", Err: "ENOSPC"})
	n.onStorageAlarm(storage.Alarm{Kind: storage.AlarmRecovered, Camera: "rec-a/lobby"})
	evs, err := n.Events(10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		want := e.Severity == events.SeverityAlarm && e.Cameras[0] == "rec-a/lobby"
		if got := !e.ResolvedAt.IsZero(); got != want {
			t.Errorf("%s %v: resolved %v, want %v", e.Type, e.Cameras, got, want)
		}
	}
}
