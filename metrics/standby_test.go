package metrics

import (
	"testing"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/webhook"
)

type standbySource struct{ standby []api.CameraInfo }

func (s standbySource) Cameras() api.Cameras { return api.Cameras{Server: "rec-b", Standby: s.standby} }
func (s standbySource) Cluster() []api.ServerInfo {
	return []api.ServerInfo{{Name: "rec-b", State: buddy.StateAlive}}
}
func (s standbySource) Webhooks() []webhook.TargetStats { return nil }
func (s standbySource) Disk() (uint64, uint64, error)   { return 1, 2, nil }

// TestScrapeStandby: standby sessions are counted per home, mode and
// state, and each hot ring's size is exported; they are not cameras this
// server records.
func TestScrapeStandby(t *testing.T) {
	m := New(Options{Source: standbySource{standby: []api.CameraInfo{
		{ID: "rec-a/c1", Home: "rec-a", RecordedBy: "rec-b", State: "recording", Standby: "hot", HeldBytes: 1 << 20, HeldSeconds: 5.2},
		{ID: "rec-a/c2", Home: "rec-a", RecordedBy: "rec-b", State: "recording", Standby: "hot", HeldBytes: 2 << 20, HeldSeconds: 5.1, ResidentBytes: 2<<20 + 4096},
		{ID: "rec-a/c3", Home: "rec-a", RecordedBy: "rec-b", State: "offline", Standby: "hot"},
		{ID: "rec-c/c1", Home: "rec-c", RecordedBy: "rec-b", State: "recording", Standby: "mirror"},
	}}, Server: "rec-b"})
	fams, _ := scrape(t, m.Handler())
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"buddyrec_standby_sessions", map[string]string{"home": "rec-a", "mode": "hot", "state": "recording"}, 2},
		{"buddyrec_standby_sessions", map[string]string{"home": "rec-a", "mode": "hot", "state": "offline"}, 1},
		{"buddyrec_standby_sessions", map[string]string{"home": "rec-c", "mode": "mirror", "state": "recording"}, 1},
		{"buddyrec_standby_held_bytes", map[string]string{"camera": "rec-a/c2", "home": "rec-a"}, 2 << 20},
		{"buddyrec_standby_held_seconds", map[string]string{"camera": "rec-a/c1", "home": "rec-a"}, 5.2},
		{"buddyrec_standby_resident_bytes", map[string]string{"camera": "rec-a/c2", "home": "rec-a"}, 2<<20 + 4096},
		{"buddyrec_cameras_adopted", nil, 0},
	} {
		got, ok := value(fams, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
}
