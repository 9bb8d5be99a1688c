package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/buddyrec/buddyrec/api"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/web"
	"github.com/prometheus/common/expfmt"
)

// startNode runs a standalone node over src (a config without name,
// data_dir and listen, which this adds) until the test ends.
func startNode(t *testing.T, name, body string) (*Node, func()) {
	t.Helper()
	return startNodeAt(t, name, "127.0.0.1:0", body)
}

// startNodeAt is startNode listening for HTTP on addr: a site's servers
// need real ports, since each publishes its address to the others. Node
// tests record in the test's own process
// ([recorder] cameras_per_worker = 0 in every config here): the test
// binary is no buddyrec a worker process could run; worker processes are
// tested by worker/ and the process tests of cmd/buddyrec.
func startNodeAt(t *testing.T, name, addr, body string) (*Node, func()) {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf("name = %q\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = %q\n%s", name, dir, addr, body)
	cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), src)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	n, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitFor(t, 5*time.Second, "http listener", func() bool { return n.HTTPAddr() != "" })
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		defer cancel()
		closed := make(chan error, 1)
		go func() { closed <- n.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("node did not stop within 20s")
		}
		// Close waits for Run's work; Run itself returns right after.
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after Close")
		}
	}
	t.Cleanup(stop)
	return n, stop
}

// waitFor is testutil.Eventually under the name this package's tests use.
var waitFor = testutil.Eventually

func getJSON(t *testing.T, n *Node, path string, v any) int {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode
}

type camerasResp struct {
	Cameras []api.CameraInfo `json:"cameras"`
}

func cameraStates(t *testing.T, n *Node) map[string]api.CameraInfo {
	var r camerasResp
	getJSON(t, n, "/api/v1/cameras", &r)
	out := map[string]api.CameraInfo{}
	for _, c := range r.Cameras {
		out[c.ID] = c
	}
	return out
}

type probe struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, bin, path string) probe {
	t.Helper()
	out, err := exec.Command(bin, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return p
}

// TestRecordEndToEnd: camsim → recorder → storage → API, then every segment
// read back by ffprobe with the right codecs, durations and frame counts.
func TestRecordEndToEnd(t *testing.T) {
	ffprobeBin := testutil.NeedTool(t, "ffprobe")
	for _, codec := range []string{"h264", "h265"} {
		t.Run(codec, func(t *testing.T) {
			cams := testutil.Cameras(t, camsim.Options{Cameras: 2, Codec: codec})
			n, stop := startNode(t, "rec-a", fmt.Sprintf(`
[storage]
segment = "3s"
part = "1s"
[[camera]]
name = "lobby"
url = %q
[[camera]]
name = "dock"
url = %q
`, cams.URL(1), cams.URL(2)))
			waitFor(t, 10*time.Second, "both cameras recording", func() bool {
				st := cameraStates(t, n)
				return st["rec-a/lobby"].State == "recording" && st["rec-a/dock"].State == "recording"
			})
			started := time.Now()
			time.Sleep(7 * time.Second)

			st := cameraStates(t, n)
			lobby := st["rec-a/lobby"]
			if lobby.Home != "rec-a" || lobby.RecordedBy != "rec-a" || lobby.Since.After(started) {
				t.Errorf("lobby as the API reports it: %+v", lobby)
			}
			var spans struct {
				Spans []api.Span `json:"spans"`
			}
			q := fmt.Sprintf("/api/v1/recordings?camera=rec-a/lobby&from=%s&to=%s", started.Add(-time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
			if code := getJSON(t, n, q, &spans); code != 200 {
				t.Fatalf("recordings: HTTP %d", code)
			}
			if len(spans.Spans) != 1 || spans.Spans[0].RecordedBy != "rec-a" || spans.Spans[0].End.Sub(spans.Spans[0].Start) < 5*time.Second {
				t.Errorf("want one span of ≥5s recorded by rec-a, got %+v", spans.Spans)
			}
			stop()
			sent := cams.Sent(1)

			store, err := storage.Open(storage.Options{Dir: n.cfg.DataDir, Server: "rec-a"})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			segs, err := store.Segments("rec-a/lobby", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			if err != nil || len(segs) < 3 {
				t.Fatalf("want ≥3 segments of 3s, got %d (%v)", len(segs), err)
			}
			frames := 0
			wantVideo := map[string]string{"h264": "h264", "h265": "hevc"}[codec]
			for _, seg := range segs {
				if seg.Open {
					t.Errorf("segment %s still open after a graceful stop", seg.File)
				}
				p := ffprobe(t, ffprobeBin, store.SegmentPath(seg))
				var video, audio bool
				for _, s := range p.Streams {
					switch s.CodecType {
					case "video":
						video = s.CodecName == wantVideo
						nf, _ := strconv.Atoi(s.NbReadFrames)
						frames += nf
					case "audio":
						audio = s.CodecName == "aac"
					}
				}
				if !video {
					t.Errorf("%s: no %s video stream: %+v", seg.File, wantVideo, p.Streams)
				}
				if codec == "h264" && !audio {
					t.Errorf("%s: no AAC audio although the camera sends it", seg.File)
				}
				dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
				idx := seg.End.Sub(seg.Start).Seconds()
				if d := dur - idx; d > 1 || d < -1 {
					t.Errorf("%s: ffprobe duration %.2fs, index says %.2fs", seg.File, dur, idx)
				}
			}
			// Frames before the first keyframe are skipped (≤ 1 GOP = 25),
			// plus at most one part in flight at the stop.
			if frames > sent || frames < sent-50 {
				t.Errorf("recorded %d frames, camsim sent %d (want within 2 s of video)", frames, sent)
			}
		})
	}
}

// TestBadCamerasDoNotDisturbOthers: a camera rejecting the password, one
// that stalls and one that sends garbage go to alarm states while a healthy
// camera keeps recording without a gap.
func TestBadCamerasDoNotDisturbOthers(t *testing.T) {
	cams := testutil.Cameras(t, camsim.Options{
		Cameras: 4,
		Faults: map[int]camsim.Fault{
			2: {User: "admin", Pass: "right-password"},
			3: {StallAfter: 2 * time.Second},
			4: {DropAfter: 2 * time.Second},
		},
	})
	wrong := strings.Replace(cams.URL(2), "rtsp://", "rtsp://admin:wrong-password@", 1)
	n, _ := startNode(t, "rec-a", fmt.Sprintf(`
[storage]
segment = "60s"
[[camera]]
name = "good"
url = %q
[[camera]]
name = "badpass"
url = %q
[[camera]]
name = "stall"
url = %q
[[camera]]
name = "drop"
url = %q
`, cams.URL(1), wrong, cams.URL(3), cams.URL(4)))
	waitFor(t, 10*time.Second, "good camera recording", func() bool { return cameraStates(t, n)["rec-a/good"].State == "recording" })
	start := time.Now()
	waitFor(t, 15*time.Second, "stalled camera offline", func() bool { return cameraStates(t, n)["rec-a/stall"].State == "offline" })
	st := cameraStates(t, n)
	if bp := st["rec-a/badpass"]; bp.State != "offline" || !strings.Contains(bp.Error, "authentication failed") {
		t.Errorf("wrong password camera: %+v", bp)
	}
	if strings.Contains(fmt.Sprint(st), "wrong-password") {
		t.Errorf("API leaks a camera password: %+v", st)
	}
	if st["rec-a/drop"].Reconnects == 0 && st["rec-a/drop"].State == "recording" {
		t.Errorf("dropping camera shows no reconnect: %+v", st["rec-a/drop"])
	}
	time.Sleep(time.Second)
	var spans struct {
		Spans []api.Span `json:"spans"`
	}
	q := fmt.Sprintf("/api/v1/recordings?camera=rec-a/good&from=%s&to=%s", start.Add(-time.Minute).UTC().Format(time.RFC3339), time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	getJSON(t, n, q, &spans)
	if len(spans.Spans) != 1 || spans.Spans[0].Start.After(start) || spans.Spans[0].End.Before(time.Now().Add(-2*time.Second)) {
		t.Errorf("healthy camera footage has gaps or stops: %+v", spans.Spans)
	}
	var ev struct {
		Events []struct {
			Type    string   `json:"type"`
			Cameras []string `json:"cameras"`
			Text    string   `json:"text"`
		} `json:"events"`
	}
	getJSON(t, n, "/api/v1/events?limit=50", &ev)
	found := map[string]bool{}
	for _, e := range ev.Events {
		found[e.Type] = true
		if strings.Contains(e.Text, "wrong-password") {
			t.Errorf("event leaks a password: %q", e.Text)
		}
	}
	if !found["camera.auth_failed"] || !found["camera.offline"] {
		t.Errorf("events lack camera.auth_failed / camera.offline: %+v", ev.Events)
	}
}

// TestAccessControl: with a users_file, the page, API and metrics want a
// user; /healthz stays open; without one, binding beyond loopback is refused.
func TestAccessControl(t *testing.T) {
	dir := t.TempDir()
	hash, err := web.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("tech:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, _ := startNode(t, "rec-a", fmt.Sprintf("[http]\nusers_file = %q\n", users))
	get := func(path, user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path, user, pass string
		want             int
	}{
		{"/api/v1/cameras", "", "", 401},
		{"/api/v1/cameras", "tech", "wrong", 401},
		{"/api/v1/cameras", "nobody", "correct horse", 401},
		{"/api/v1/cameras", "tech", "correct horse", 200},
		{"/", "", "", 401},
		{"/", "tech", "correct horse", 200},
		{"/metrics", "", "", 401},
		{"/healthz", "", "", 200},
	} {
		if code, _ := get(tc.path, tc.user, tc.pass); code != tc.want {
			t.Errorf("GET %s as %q/%q: %d, want %d", tc.path, tc.user, tc.pass, code, tc.want)
		}
	}
	code, body := get("/metrics", "tech", "correct horse")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	fams, err := (&expfmt.TextParser{}).TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"buddyrec_build_info", "buddyrec_disk_free_bytes", "buddyrec_segment_write_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(body, hash) {
		t.Error("/metrics shows a password hash")
	}

	// Without users, a server reachable from the network is refused: by
	// `buddyrec check` (config) and, as a second line, by the node itself.
	_, err = config.Parse(filepath.Join(dir, "open.toml"), fmt.Sprintf("name = \"x\"\ndata_dir = %q\n[listen]\nhttp = \"0.0.0.0:0\"\n", t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "open.toml:4: listen.http: 0.0.0.0:0 is reachable from the network") {
		t.Errorf("config with an open network listener: %v", err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "loop.toml"), fmt.Sprintf("name = \"x\"\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = \"127.0.0.1:0\"\n", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen.HTTP = "0.0.0.0:0"
	if _, err := New(Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "refusing to serve http on 0.0.0.0:0 without [http] users_file") {
		t.Errorf("an open server on 0.0.0.0 was not refused: %v", err)
	}
}

// TestTLS: with cert_file and key_file the page and API are served over
// HTTPS only.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rec-a"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	n, _ := startNode(t, "rec-a", fmt.Sprintf("[http]\ncert_file = %q\nkey_file = %q\n", certFile, keyFile))
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, der))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := c.Get("https://" + n.HTTPAddr() + "/api/v1/cameras")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("HTTPS answer %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	resp, err = http.Get("http://" + n.HTTPAddr() + "/api/v1/cameras")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on a TLS listener")
		}
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
