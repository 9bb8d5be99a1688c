package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/events"
)

// Secrets planted in the fixtures; none may appear in any answer.
const (
	camPassword = "hunter2-cam-secret"
	apiToken    = "tok-0123456789abcdef-secret"
)

var gossipKey = []byte("0123456789abcdef0123456789abcdef")

// testNow is the fixed clock of every page test.
var testNow = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

type fakeSource struct {
	self    string
	cluster []api.ServerInfo
	cameras api.Cameras
	spans   map[string][]api.Span
	tlErr   error
	ifFails []api.IfFails // served as a FailurePreviewer

	mu     sync.Mutex
	events []events.Event
	acks   []string // "id by"
}

func (f *fakeSource) IfFails() []api.IfFails    { return f.ifFails }
func (f *fakeSource) Self() string              { return f.self }
func (f *fakeSource) Cluster() []api.ServerInfo { return f.cluster }
func (f *fakeSource) Cameras() api.Cameras      { return f.cameras }
func (f *fakeSource) Timeline(from, to time.Time) (map[string][]api.Span, error) {
	if f.tlErr != nil {
		return nil, f.tlErr
	}
	out := map[string][]api.Span{}
	for id, ss := range f.spans {
		for _, s := range ss {
			if s.End.After(from) && s.Start.Before(to) {
				out[id] = append(out[id], s)
			}
		}
	}
	return out, nil
}

func (f *fakeSource) Events(limit int) ([]events.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]events.Event(nil), f.events...)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeSource) Ack(id, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.events {
		if f.events[i].ID == id {
			f.acks = append(f.acks, id+" "+by)
			if !f.events[i].Acked {
				f.events[i].Acked, f.events[i].AckedBy, f.events[i].AckedAt = true, by, testNow
			}
			return nil
		}
	}
	return events.ErrNotFound
}

func span(by string, fromAgo, toAgo time.Duration) api.Span {
	return api.Span{Start: testNow.Add(-fromAgo), End: testNow.Add(-toAgo), RecordedBy: by}
}

// siteA is rec-a's view: rec-a alive (records its lobby and rec-c's door,
// adopted), rec-b alive at peerAddr, rec-c dead.
func siteA(peerAddr string) *fakeSource {
	h := time.Hour
	return &fakeSource{
		self: "rec-a",
		cluster: []api.ServerInfo{
			{Name: "rec-a", State: "alive", Address: "127.0.0.1:7946", HTTP: "127.0.0.1:1", Cameras: 2,
				Capacity: api.Capacity{Cameras: 8, Viewers: 4}, AdoptedFrom: []string{"rec-c"},
				Load:      api.Load{CPU: 0.25, MemoryBytes: 300e6, DiskUsed: 400e9, DiskTotal: 1000e9, Viewers: 1},
				Inventory: []api.HomeCamera{{ID: "rec-a/lobby", Critical: true, PlannedOn: "rec-a"}}},
			{Name: "rec-b", State: "alive", Address: "127.0.0.2:7946", HTTP: peerAddr, Cameras: 1,
				Capacity: api.Capacity{Cameras: 8}, AdoptedFrom: []string{},
				Load:      api.Load{MemoryBytes: 16 << 20, DiskUsed: 93 << 30, DiskTotal: 465 << 30}, // as gossiped: rounded
				Inventory: []api.HomeCamera{{ID: "rec-b/dock", PlannedOn: "rec-b"}, {ID: "rec-b/yard", PlannedOn: "rec-b"}}},
			{Name: "rec-c", State: "dead", Address: "127.0.0.3:7946", HTTP: "127.0.0.3:8080", AdoptedFrom: []string{},
				// rec-a took door; gate and shed fit nowhere.
				Inventory: []api.HomeCamera{{ID: "rec-c/door", PlannedOn: "rec-a"},
					{ID: "rec-c/gate", Critical: true, Unrecorded: api.UnrecordedCapacity},
					{ID: "rec-c/shed", Unrecorded: api.UnrecordedCapacity}}},
		},
		cameras: api.Cameras{Server: "rec-a", Cameras: []api.CameraInfo{
			{ID: "rec-a/lobby", Home: "rec-a", RecordedBy: "rec-a", State: "recording", Since: testNow.Add(-3 * h),
				BitrateBps: 2.5e6, LastKeyframe: testNow.Add(-time.Second), Critical: true, Codec: "H264+AAC"},
			{ID: "rec-c/door", Home: "rec-c", RecordedBy: "rec-a", State: "offline", Since: testNow.Add(-time.Minute), Codec: "H264",
				Error: "dial rtsp://admin:" + camPassword + "@10.0.0.5/stream1: connection refused", NextAttempt: testNow.Add(12 * time.Second)},
		},
			Load: &api.Load{CPU: 0.25, MemoryBytes: 300e6, DiskUsed: 400e9, DiskTotal: 1000e9, Viewers: 1, RecordingBytes: 350e9},
			Footage: map[string]api.Footage{
				"rec-a/lobby": {Bytes: 40e9, Oldest: testNow.Add(-20 * h)},
				"rec-c/door":  {Bytes: 2e9, Oldest: testNow.Add(-2 * h)},
			}},
		spans: map[string][]api.Span{
			"rec-a/lobby": {span("rec-a", 20*h, 10*h), span("rec-a", 6*h, 0)},
			"rec-c/door":  {span("rec-a", 2*h, 0)},
		},
		events: []events.Event{
			{ID: "000000000000000000000003", Time: testNow.Add(-2 * h), Type: events.TypeServerDown, Severity: events.SeverityAlarm,
				Server: "rec-c", Text: "rec-c stopped answering gossip"},
			{ID: "000000000000000000000002", Time: testNow.Add(-3 * h), Type: events.TypeDiskLow, Severity: events.SeverityAlarm,
				Server: "rec-a", Text: "disk 91 % full", Acked: true, AckedBy: "alice", AckedAt: testNow.Add(-150 * time.Minute)},
			{ID: "000000000000000000000001", Time: testNow.Add(-4 * h), Type: events.TypeCameraOnline, Severity: events.SeverityInfo,
				Server: "rec-a", Cameras: []string{"rec-a/lobby"}},
		},
	}
}

// siteB is rec-b: records its yard and recorded rec-a's lobby during an
// earlier outage of rec-a.
func siteB() *fakeSource {
	h := time.Hour
	return &fakeSource{
		self: "rec-b",
		cameras: api.Cameras{Server: "rec-b", Cameras: []api.CameraInfo{
			{ID: "rec-b/yard", Home: "rec-b", RecordedBy: "rec-b", State: "recording", BitrateBps: 1e6, LastKeyframe: testNow, Codec: "H265"},
		},
			// Its own figures, exact, where gossip carried 16 MiB steps.
			Load: &api.Load{CPU: 0.1, MemoryBytes: 27_300_000, DiskUsed: 100e9, DiskTotal: 500e9, RecordingBytes: 60e9},
			Footage: map[string]api.Footage{
				"rec-b/yard":  {Bytes: 10e9, Oldest: testNow.Add(-30 * 24 * h)},
				"rec-a/lobby": {Bytes: 1e9, Oldest: testNow.Add(-9 * h)},
			}},
		spans: map[string][]api.Span{
			"rec-b/yard":  {span("rec-b", 24*h, 0)},
			"rec-a/lobby": {span("rec-b", 9*h, 7*h)},
		},
	}
}

// serveNode runs what a node serves for src: /api/v1/cameras plus the web
// handler, guarded by auth.
func serveNode(t *testing.T, src *fakeSource, auth *Auth, o Options) *httptest.Server {
	t.Helper()
	o.Source = src
	o.Auth = auth
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cameras", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(src.Cameras())
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		evs, _ := src.Events(100)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"events": evs})
	})
	mux.HandleFunc("POST /api/v1/events/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ By string }
		json.NewDecoder(r.Body).Decode(&body)
		if err := src.Ack(r.PathValue("id"), Identity(r.Context())+":"+body.By); err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("/", NewHandler(o))
	srv := httptest.NewServer(auth.Wrap(mux))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
