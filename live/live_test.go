package live

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

const camID = "rec-a/cam1"

// countSink records every sample handed to storage.
type countSink struct {
	mu      sync.Mutex
	streams [][]storage.Sample
}

type countWriter struct {
	s *countSink
	i int
}

func (c *countSink) Begin(storage.Stream) (recorder.SampleWriter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams = append(c.streams, nil)
	return &countWriter{s: c, i: len(c.streams) - 1}, nil
}

func (w *countWriter) Write(s storage.Sample) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.streams[w.i] = append(w.s.streams[w.i], s)
	return nil
}

func (w *countWriter) Close() error { return nil }

// video returns the video samples of each stream.
func (c *countSink) video() [][]storage.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]storage.Sample
	for _, st := range c.streams {
		var v []storage.Sample
		for _, s := range st {
			if s.Track == 0 {
				v = append(v, s)
			}
		}
		out = append(out, v)
	}
	return out
}

type rig struct {
	cams *camsim.Server
	rec  *recorder.Manager
	sink *countSink
	live *Server
}

func startRig(t *testing.T, o Options) *rig {
	t.Helper()
	cams := testutil.Cameras(t, camsim.Options{Cameras: 1})
	sink := &countSink{}
	rec := recorder.NewManager(recorder.ManagerOptions{Sink: sink})
	t.Cleanup(rec.Close)
	rec.Set([]recorder.Camera{{ID: camID, Home: "rec-a", URL: cams.URL(1)}})
	o.Listen = "127.0.0.1:0"
	o.Source = rec
	o.Cameras = func() []string { return []string{camID} }
	srv, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &rig{cams: cams, rec: rec, sink: sink, live: srv}
}

func (r *rig) url() string { return "rtsp://" + r.live.Addr() + "/" + camID }

func (r *rig) status() recorder.Status {
	for _, s := range r.rec.Status() {
		if s.ID == camID {
			return s
		}
	}
	return recorder.Status{}
}

// ffprobeLive reads the live stream's codec and resolution.
func ffprobeLive(t *testing.T, url string) (codec string, w, h int) {
	t.Helper()
	bin := testutil.NeedTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v",
		"-show_streams", "-of", "json", url).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("ffprobe %s: %v %s", url, err, ee.Stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) == 0 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	return r.Streams[0].CodecName, r.Streams[0].Width, r.Streams[0].Height
}

func TestLiveFFprobe(t *testing.T) {
	r := startRig(t, Options{})
	codec, w, h := ffprobeLive(t, r.url())
	if codec != "h264" || w != 1280 || h != 720 {
		t.Errorf("live stream is %s %dx%d, want h264 1280x720", codec, w, h)
	}
	testutil.EventuallyMsg(t, 5*time.Second, func() string {
		if n := r.live.Viewers(); n != 0 {
			return fmt.Sprintf("%d viewers after ffprobe left, want 0", n)
		}
		return ""
	})
}

// rawViewer speaks RTSP over TCP by hand: DESCRIBE, SETUP (interleaved)
// and PLAY; after PLAY it can simply stop reading the socket.
type rawViewer struct {
	conn net.Conn
	rd   *bufio.Reader
	cseq int
}

func dialViewer(t *testing.T, addr string) *rawViewer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck // smaller is only faster to fill
	t.Cleanup(func() { conn.Close() })
	return &rawViewer{conn: conn, rd: bufio.NewReader(conn)}
}

// request sends one request and returns the status code, headers and body.
func (v *rawViewer) request(method, url string, hdr ...string) (int, textproto.MIMEHeader, string, error) {
	v.cseq++
	msg := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n", method, url, v.cseq)
	for _, h := range hdr {
		msg += h + "\r\n"
	}
	v.conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := v.conn.Write([]byte(msg + "\r\n")); err != nil {
		return 0, nil, "", err
	}
	tp := textproto.NewReader(v.rd)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, nil, "", fmt.Errorf("bad status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, "", err
	}
	body := make([]byte, 0)
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
		body = make([]byte, n)
		if _, err := ioReadFull(v.rd, body); err != nil {
			return 0, nil, "", err
		}
	}
	return code, h, string(body), nil
}

var controlRE = regexp.MustCompile(`a=control:(\S+)`)

// play sets up the first media (video) and plays it; it returns the DESCRIBE status
// (or the first failing one).
func (v *rawViewer) play(url string) (int, error) {
	code, _, sdp, err := v.request("DESCRIBE", url, "Accept: application/sdp")
	if err != nil || code != 200 {
		return code, err
	}
	// the first media (video) is the one whose stall matters: its control
	// attribute is the first one after the first m= line
	i := strings.Index(sdp, "\nm=")
	if i < 0 {
		return 0, fmt.Errorf("no media in %q", sdp)
	}
	m := controlRE.FindStringSubmatch(sdp[i:])
	if m == nil {
		return 0, fmt.Errorf("no control attribute in %q", sdp)
	}
	ctl := m[1]
	if !strings.HasPrefix(ctl, "rtsp://") {
		ctl = url + "/" + ctl
	}
	code, h, _, err := v.request("SETUP", ctl, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if err != nil || code != 200 {
		return code, err
	}
	session, _, _ := strings.Cut(h.Get("Session"), ";")
	code, _, _, err = v.request("PLAY", url, "Session: "+session)
	return code, err
}

// TestStalledViewerDoesNotHurtRecording: a viewer that plays and then never
// reads fills its socket and its write queue; the recording loses nothing.
func TestStalledViewerDoesNotHurtRecording(t *testing.T) {
	r := startRig(t, Options{WriteQueueSize: 64})
	v := dialViewer(t, r.live.Addr())
	if code, err := v.play(r.url()); err != nil || code != 200 {
		t.Fatalf("play: %d %v", code, err)
	}
	// a well-behaved viewer at the same time still gets the stream
	if codec, _, _ := ffprobeLive(t, r.url()); codec != "h264" {
		t.Errorf("second viewer got %q", codec)
	}
	time.Sleep(2 * time.Second) // the stalled viewer's buffers are long full by now
	st := r.status()
	if st.FramesDropped != 0 {
		t.Errorf("recorder dropped %d frames", st.FramesDropped)
	}
	if st.FramesReceived < 50 {
		t.Fatalf("recorder received only %d frames", st.FramesReceived)
	}
	for i, vs := range r.sink.video() {
		for j := 1; j < len(vs); j++ {
			if d := vs[j].DTS - vs[j-1].DTS; d <= 0 || d > 3600*3/2 {
				t.Fatalf("stream %d: DTS step %d at sample %d: a frame is missing", i, d, j)
			}
		}
	}
}

func TestViewerLimit(t *testing.T) {
	r := startRig(t, Options{MaxViewers: 2})
	for i := range 2 {
		v := dialViewer(t, r.live.Addr())
		if code, err := v.play(r.url()); err != nil || code != 200 {
			t.Fatalf("viewer %d: %d %v", i+1, code, err)
		}
	}
	if n := r.live.Viewers(); n != 2 {
		t.Errorf("Viewers() = %d, want 2", n)
	}
	v := dialViewer(t, r.live.Addr())
	code, err := v.play(r.url())
	if err != nil || code != 453 {
		t.Errorf("third viewer: %d %v, want 453", code, err)
	}
}

func TestAuthorizeAndUnknownCamera(t *testing.T) {
	r := startRig(t, Options{Authorize: func(remote, u, p string) bool { return remote == "127.0.0.1" && u == "op" && p == "pw" }})
	v := dialViewer(t, r.live.Addr())
	code, h, _, err := v.request("DESCRIBE", r.url())
	if err != nil || code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no credentials: %d %q %v, want 401 with a Basic challenge", code, h.Get("WWW-Authenticate"), err)
	}
	// gortsplib answers wrong credentials by closing the connection
	v = dialViewer(t, r.live.Addr())
	if code, _, _, err := v.request("DESCRIBE", r.url(), "Authorization: Basic b3A6d3Jvbmc="); err == nil && code != 401 {
		t.Errorf("wrong password: %d, want 401 or a closed connection", code)
	}
	v = dialViewer(t, r.live.Addr())
	if code, _, _, err := v.request("DESCRIBE", r.url(), "Authorization: Basic b3A6cHc="); err != nil || code != 200 {
		t.Errorf("right password: %d %v, want 200", code, err)
	}
	if code, _, _, err := v.request("DESCRIBE", "rtsp://"+r.live.Addr()+"/rec-a/nope", "Authorization: Basic b3A6cHc="); err != nil || code != 404 {
		t.Errorf("unknown camera: %d %v, want 404", code, err)
	}
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
