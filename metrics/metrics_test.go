package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/buildinfo"
	"github.com/buddyrec/buddyrec/webhook"
)

const camPassword = "hunter2-cam-secret"

type fakeSource struct {
	mu      sync.Mutex
	cams    []api.CameraInfo
	cluster []api.ServerInfo
	hooks   []webhook.TargetStats
	free    uint64
	total   uint64
	diskErr error
}

func (f *fakeSource) Cameras() api.Cameras {
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.Cameras{Server: "rec-a", Cameras: append([]api.CameraInfo(nil), f.cams...)}
}
func (f *fakeSource) Cluster() []api.ServerInfo       { return f.cluster }
func (f *fakeSource) Webhooks() []webhook.TargetStats { return f.hooks }
func (f *fakeSource) Disk() (uint64, uint64, error)   { return f.free, f.total, f.diskErr }

func fixture() *fakeSource {
	return &fakeSource{
		cams: []api.CameraInfo{
			{ID: "rec-a/lobby", Home: "rec-a", RecordedBy: "rec-a", State: "recording", BytesReceived: 123456,
				FramesReceived: 900, FramesDropped: 3, Reconnects: 2, BitrateBps: 2e6, LastKeyframe: time.Unix(1700000000, 0)},
			{ID: "rec-c/door", Home: "rec-c", RecordedBy: "rec-a", State: "offline", Reconnects: 7,
				Error: "dial rtsp://admin:" + camPassword + "@10.0.0.5/: refused"},
			{ID: "rec-a/lobby", Home: "rec-a", RecordedBy: "rec-a", State: "recording"}, // duplicate: must not break the scrape
		},
		cluster: []api.ServerInfo{{Name: "rec-a", State: "alive"}, {Name: "rec-b", State: "alive"}, {Name: "rec-c", State: "dead"}},
		hooks: []webhook.TargetStats{
			{Name: "psim", URL: "https://psim.example/hooks", Pending: 4, Failures: 9, Delivered: 20, GaveUp: 1, LastError: "HTTP 500"},
			{Name: "backup", Disabled: true},
		},
		free: 600e9, total: 1000e9,
	}
}

func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %d: %s", resp.StatusCode, body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return fams, string(body)
}

// value returns the value of name whose labels include want; ok false when
// no such series exists.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	m := New(Options{Source: fixture(), Server: "rec-a", Version: "v0.1.0"})
	m.ObserveSegmentWrite(3 * time.Millisecond)
	m.ObserveSegmentWrite(2 * time.Second)
	m.Failover("rec-c")
	m.Failover("rec-c")
	m.Failback("rec-c")
	fams, body := scrape(t, m.Handler())

	lobby := map[string]string{"camera": "rec-a/lobby", "home": "rec-a", "recorded_by": "rec-a"}
	door := map[string]string{"camera": "rec-c/door", "home": "rec-c", "recorded_by": "rec-a"}
	with := func(base map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range base {
			out[a] = b
		}
		return out
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"buddyrec_camera_received_bytes_total", lobby, 123456},
		{"buddyrec_camera_frames_received_total", lobby, 900},
		{"buddyrec_camera_frames_dropped_total", lobby, 3},
		{"buddyrec_camera_reconnects_total", lobby, 2},
		{"buddyrec_camera_reconnects_total", door, 7},
		{"buddyrec_camera_bitrate_bits_per_second", lobby, 2e6},
		{"buddyrec_camera_last_keyframe_timestamp_seconds", lobby, 1700000000},
		{"buddyrec_camera_state", with(lobby, "state", "recording"), 1},
		{"buddyrec_camera_state", with(lobby, "state", "offline"), 0},
		{"buddyrec_camera_state", with(door, "state", "offline"), 1},
		{"buddyrec_camera_state", with(door, "state", "recording"), 0},
		{"buddyrec_cameras_adopted", nil, 1},
		{"buddyrec_gossip_members", map[string]string{"state": "alive"}, 2},
		{"buddyrec_gossip_members", map[string]string{"state": "dead"}, 1},
		{"buddyrec_gossip_members", map[string]string{"state": "suspect"}, 0},
		{"buddyrec_gossip_members", map[string]string{"state": "left"}, 0},
		{"buddyrec_webhook_queue_depth", map[string]string{"target": "psim"}, 4},
		{"buddyrec_webhook_failures_total", map[string]string{"target": "psim"}, 9},
		{"buddyrec_webhook_delivered_total", map[string]string{"target": "psim"}, 20},
		{"buddyrec_webhook_gave_up_total", map[string]string{"target": "psim"}, 1},
		{"buddyrec_webhook_target_disabled", map[string]string{"target": "backup"}, 1},
		{"buddyrec_webhook_target_disabled", map[string]string{"target": "psim"}, 0},
		{"buddyrec_disk_free_bytes", nil, 600e9},
		{"buddyrec_disk_total_bytes", nil, 1000e9},
		{"buddyrec_failovers_total", map[string]string{"home": "rec-c"}, 2},
		{"buddyrec_failbacks_total", map[string]string{"home": "rec-c"}, 1},
		{"buddyrec_build_info", map[string]string{"version": "v0.1.0", "server": "rec-a",
			"goversion": buildinfo.Read().Go, "revision": buildinfo.Read().Commit, "dirty": fmt.Sprint(buildinfo.Read().Dirty)}, 1},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v missing", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if n := len(fams["buddyrec_camera_frames_received_total"].Metric); n != 2 {
		t.Errorf("%d camera series, want 2 (duplicate dropped)", n)
	}
	if got := fams["buddyrec_camera_received_bytes_total"].GetType(); got != dto.MetricType_COUNTER {
		t.Errorf("bytes type %v, want counter", got)
	}

	h := fams["buddyrec_segment_write_seconds"]
	if h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatal("segment write histogram missing")
	}
	hist := h.Metric[0].Histogram
	if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 2.003-1e-9 || hist.GetSampleSum() > 2.003+1e-9 {
		t.Errorf("histogram count %d sum %v", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.Bucket {
		if b.GetUpperBound() >= 0.004 && b.GetUpperBound() < 2 && b.GetCumulativeCount() != 1 {
			t.Errorf("bucket le=%v has %d, want 1", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
	for _, std := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[std] == nil {
			t.Errorf("%s missing", std)
		}
	}
	for _, secret := range []string{camPassword, "admin:", "psim.example", "HTTP 500"} {
		if strings.Contains(body, secret) {
			t.Errorf("exposition contains %q", secret)
		}
	}
}

func TestScrapeSourceProblems(t *testing.T) {
	src := fixture()
	src.diskErr = errors.New("statfs /data: input/output error")
	src.cams = append(src.cams, api.CameraInfo{ID: "rec-a/\xff\xfe", Home: "rec-a", RecordedBy: "rec-a", State: "weird"})
	src.cluster = append(src.cluster, api.ServerInfo{Name: "rec-d"})
	m := New(Options{Source: src})
	scrape(t, m.Handler())
	// The error counter is gathered concurrently with the collector that
	// counts, so the first scrape may or may not include its own errors;
	// the second includes at least the first's.
	fams, _ := scrape(t, m.Handler())
	if fams["buddyrec_disk_free_bytes"] != nil {
		t.Error("disk metrics exported despite the error")
	}
	if v, ok := value(fams, "buddyrec_scrape_errors_total", nil); !ok || v < 1 {
		t.Errorf("scrape errors %v %v, want ≥ 1", v, ok)
	}
	// The rest of the scrape is intact.
	if v, _ := value(fams, "buddyrec_camera_reconnects_total", map[string]string{"camera": "rec-c/door"}); v != 7 {
		t.Errorf("door reconnects %v after a bad camera", v)
	}
	if v, _ := value(fams, "buddyrec_gossip_members", map[string]string{"state": "unknown"}); v != 1 {
		t.Errorf("member without state: %v", v)
	}
}

func TestSeparateRegistries(t *testing.T) {
	a, b := New(Options{Source: fixture()}), New(Options{})
	a.Failover("rec-x")
	fams, _ := scrape(t, b.Handler())
	if _, ok := value(fams, "buddyrec_failovers_total", map[string]string{"home": "rec-x"}); ok {
		t.Error("metrics leak between instances")
	}
	if fams["buddyrec_camera_state"] != nil {
		t.Error("camera metrics without a source")
	}
}

// BenchmarkScrape prints the cost of one scrape of a server with 64 cameras.
func BenchmarkScrape(b *testing.B) {
	src := fixture()
	src.cams = nil
	for i := range 64 {
		src.cams = append(src.cams, api.CameraInfo{ID: "rec-a/cam" + string(rune('A'+i%26)) + string(rune('a'+i/26)), Home: "rec-a", RecordedBy: "rec-a", State: "recording"})
	}
	h := New(Options{Source: src}).Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
