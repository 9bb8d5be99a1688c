package recorder

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

// fakeSink keeps everything in memory, per camera.
type fakeSink struct {
	mu      sync.Mutex
	streams map[string][]*fakeWriter
	panicOn string // camera id whose writes panic
	failing bool   // writes fail with ENOSPC (and are not kept)
}

type fakeWriter struct {
	sink    *fakeSink
	stream  storage.Stream
	samples []storage.Sample
	written []time.Time // when each sample was written
	closed  bool
}

func newFakeSink() *fakeSink { return &fakeSink{streams: map[string][]*fakeWriter{}} }

func (f *fakeSink) Begin(st storage.Stream) (SampleWriter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWriter{sink: f, stream: st}
	f.streams[st.Camera] = append(f.streams[st.Camera], w)
	return w, nil
}

func (w *fakeWriter) Write(s storage.Sample) error {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	if w.sink.panicOn == w.stream.Camera {
		panic("sink exploded")
	}
	if w.closed {
		return fmt.Errorf("write after close")
	}
	if w.sink.failing {
		return &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	w.samples = append(w.samples, s)
	w.written = append(w.written, time.Now())
	return nil
}

func (w *fakeWriter) Close() error {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.closed = true
	return nil
}

// writers returns a snapshot of the camera's streams and their samples.
func (f *fakeSink) writers(id string) []fakeWriter {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeWriter
	for _, w := range f.streams[id] {
		c := *w
		c.samples = append([]storage.Sample(nil), w.samples...)
		out = append(out, c)
	}
	return out
}

func (f *fakeSink) videoSamplesLocked(id string) []storage.Sample {
	var out []storage.Sample
	for _, w := range f.streams[id] {
		for _, s := range w.samples {
			if s.Track == 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

func (f *fakeSink) videoSamples(id string) []storage.Sample {
	var out []storage.Sample
	for _, w := range f.writers(id) {
		for _, s := range w.samples {
			if s.Track == 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

func startCams(t *testing.T, n int, codec string, faults map[int]camsim.Fault) *camsim.Server {
	t.Helper()
	return testutil.Cameras(t, camsim.Options{Cameras: n, Codec: codec, Faults: faults})
}

func newTestManager(t *testing.T, sink Sink) *Manager {
	t.Helper()
	m := NewManager(ManagerOptions{
		Sink: sink, ReadTimeout: 1500 * time.Millisecond,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	})
	t.Cleanup(m.Close)
	return m
}

func status(m *Manager, id string) Status {
	for _, s := range m.Status() {
		if s.ID == id {
			return s
		}
	}
	return Status{}
}

// waitFor is testutil.Eventually under the name this package's tests use.
var waitFor = testutil.Eventually

// checkVideo asserts that one stream's video starts with a sync sample and
// has strictly increasing DTS, and returns the largest arrival gap.
func checkVideo(t *testing.T, samples []storage.Sample) time.Duration {
	t.Helper()
	if len(samples) == 0 {
		t.Fatal("no video samples")
	}
	if !samples[0].Sync {
		t.Error("first video sample is not a sync sample")
	}
	var gap time.Duration
	for i := 1; i < len(samples); i++ {
		if samples[i].DTS <= samples[i-1].DTS {
			t.Fatalf("video DTS not increasing at %d: %d after %d", i, samples[i].DTS, samples[i-1].DTS)
		}
		gap = max(gap, samples[i].Arrival.Sub(samples[i-1].Arrival))
	}
	return gap
}

func TestRecordsCamera(t *testing.T) {
	tests := []struct {
		codec     string
		wantCodec string
		video     any
		audio     bool
	}{
		{"h264", "H264+AAC", &mp4.CodecH264{}, true},
		{"h265", "H265", &mp4.CodecH265{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			t.Parallel()
			srv := startCams(t, 1, tt.codec, nil)
			sink := newFakeSink()
			m := newTestManager(t, sink)
			m.Set([]Camera{{ID: "rec-a/cam1", Home: "rec-a", URL: srv.URL(1)}})
			waitFor(t, 5*time.Second, "recording", func() bool { return status(m, "rec-a/cam1").State == StateRecording })
			time.Sleep(2500 * time.Millisecond)
			sent := srv.Sent(1)
			st := status(m, "rec-a/cam1")
			m.Close()

			if st.Codec != tt.wantCodec {
				t.Errorf("codec = %q, want %q", st.Codec, tt.wantCodec)
			}
			if d := int(st.FramesReceived) - sent; d < -3 || d > 0 {
				t.Errorf("frames received %d, camera sent %d", st.FramesReceived, sent)
			}
			if st.FramesDropped != 0 || st.Reconnects != 0 {
				t.Errorf("dropped %d, reconnects %d; want 0", st.FramesDropped, st.Reconnects)
			}
			if st.Bitrate < 500e3 || st.Bitrate > 10e6 {
				t.Errorf("bitrate = %.0f bps, want about 2 Mbit/s", st.Bitrate)
			}
			if st.LastKeyframe.IsZero() || st.Home != "rec-a" {
				t.Errorf("status = %+v", st)
			}
			ws := sink.writers("rec-a/cam1")
			if len(ws) != 1 {
				t.Fatalf("streams = %d, want 1", len(ws))
			}
			w := ws[0]
			if !w.closed {
				t.Error("writer not closed by Manager.Close")
			}
			if fmt.Sprintf("%T", w.stream.Tracks[0].Codec) != fmt.Sprintf("%T", tt.video) || w.stream.Tracks[0].TimeScale != 90000 {
				t.Errorf("video track = %#v", w.stream.Tracks[0])
			}
			video := sink.videoSamples("rec-a/cam1")
			checkVideo(t, video)
			// Everything received from the first key frame on was written.
			if skipped := int(st.FramesReceived) - len(video); skipped < 0 || skipped > 26 {
				t.Errorf("wrote %d of %d received frames", len(video), st.FramesReceived)
			}
			var audio []storage.Sample
			for _, s := range w.samples {
				if s.Track == 1 {
					audio = append(audio, s)
				}
			}
			if tt.audio {
				if len(w.stream.Tracks) != 2 || w.stream.Tracks[1].TimeScale != 48000 {
					t.Fatalf("tracks = %#v, want video + 48 kHz AAC", w.stream.Tracks)
				}
				if len(audio) < 50 {
					t.Errorf("audio samples = %d, want ~47/s", len(audio))
				}
				for i := 1; i < len(audio); i++ {
					if d := audio[i].DTS - audio[i-1].DTS; d != 1024 {
						t.Fatalf("audio DTS step %d at %d, want 1024", d, i)
					}
				}
			} else if len(w.stream.Tracks) != 1 || len(audio) != 0 {
				t.Errorf("unexpected audio: %d tracks, %d samples", len(w.stream.Tracks), len(audio))
			}
		})
	}
}

func TestFaultyCameraIsolated(t *testing.T) {
	tests := []struct {
		name       string
		fault      camsim.Fault
		url        func(*camsim.Server) string
		wantErr    string // substring of an error seen while offline; "" = stays recording
		wantReason Reason // the Status.Reason seen while offline
		recover    bool   // must record again after the failure
	}{
		{name: "drop", fault: camsim.Fault{DropAfter: 1500 * time.Millisecond}, wantErr: "EOF", wantReason: ReasonClosed, recover: true},
		{name: "stall", fault: camsim.Fault{StallAfter: 1500 * time.Millisecond}, wantErr: "", wantReason: ReasonStall, recover: true},
		{name: "garbage", fault: camsim.Fault{Garbage: true}},
		{name: "password", fault: camsim.Fault{User: "admin", Pass: "s3cretpw"},
			url: func(s *camsim.Server) string {
				return strings.Replace(s.URL(2), "rtsp://", "rtsp://admin:wrongpw@", 1)
			}, wantErr: "authentication failed", wantReason: ReasonAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startCams(t, 2, "h264", map[int]camsim.Fault{2: tt.fault})
			sink := newFakeSink()
			m := newTestManager(t, sink)
			badURL := srv.URL(2)
			if tt.url != nil {
				badURL = tt.url(srv)
			}
			m.Set([]Camera{
				{ID: "a/good", Home: "a", URL: srv.URL(1)},
				{ID: "a/bad", Home: "a", URL: badURL},
			})
			var (
				sawOffline  bool
				errs        []string
				reasons     = map[Reason]bool{}
				recoveredAt int
			)
			for i := 0; i < 250; i++ { // 5 s
				st := status(m, "a/bad")
				if st.State == StateOffline {
					sawOffline = true
					errs = append(errs, st.Error)
					reasons[st.Reason] = true
				}
				if sawOffline && st.State == StateRecording && recoveredAt == 0 {
					recoveredAt = i
				}
				time.Sleep(20 * time.Millisecond)
			}
			good, bad := status(m, "a/good"), status(m, "a/bad")
			m.Close()

			if good.State != StateRecording || good.Reconnects != 0 {
				t.Errorf("healthy camera: %+v", good)
			}
			if gap := checkVideo(t, sink.videoSamples("a/good")); gap > 1500*time.Millisecond {
				t.Errorf("healthy camera has a %s gap", gap)
			}
			for _, e := range errs {
				if strings.Contains(e, "s3cretpw") || strings.Contains(e, "wrongpw") {
					t.Fatalf("password leaked in error %q", e)
				}
			}
			if tt.wantErr == "" && !tt.recover {
				// Garbage: keeps recording clean video.
				if sawOffline || bad.State != StateRecording {
					t.Errorf("garbage camera went offline: %+v %q", bad, errs)
				}
				for _, w := range sink.writers("a/bad") {
					checkVideo(t, videoOf(w.samples))
				}
				return
			}
			if !sawOffline || bad.Reconnects == 0 {
				t.Fatalf("faulty camera never went offline/reconnected: %+v", bad)
			}
			if tt.wantErr != "" && !containsAny(errs, tt.wantErr) {
				t.Errorf("errors %q do not mention %q", uniq(errs), tt.wantErr)
			}
			if tt.name == "stall" && !containsAny(errs, "stall") && !containsAny(errs, "timeout") {
				t.Errorf("stall errors %q mention neither stall nor timeout", uniq(errs))
			}
			if !reasons[tt.wantReason] || len(reasons) != 1 {
				t.Errorf("reasons while offline = %v, want only %q (errors %q)", reasons, tt.wantReason, uniq(errs))
			}
			if tt.recover && recoveredAt == 0 {
				t.Errorf("faulty camera never recorded again; errors %q", uniq(errs))
			}
			if !tt.recover && bad.State != StateOffline {
				t.Errorf("state = %s, want offline", bad.State)
			}
			for _, w := range sink.writers("a/bad") {
				checkVideo(t, videoOf(w.samples))
			}
		})
	}
}

func videoOf(samples []storage.Sample) []storage.Sample {
	var out []storage.Sample
	for _, s := range samples {
		if s.Track == 0 {
			out = append(out, s)
		}
	}
	return out
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func uniq(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func TestPanicInSinkRestartsOnlyThatCamera(t *testing.T) {
	srv := startCams(t, 2, "h264", nil)
	sink := newFakeSink()
	sink.panicOn = "a/boom"
	m := newTestManager(t, sink)
	m.Set([]Camera{{ID: "a/fine", URL: srv.URL(1)}, {ID: "a/boom", URL: srv.URL(2)}})
	waitFor(t, 8*time.Second, "panicking camera to restart twice", func() bool {
		st := status(m, "a/boom")
		return st.Reconnects >= 2
	})
	boom, fine := status(m, "a/boom"), status(m, "a/fine")
	m.Close()
	if !strings.Contains(boom.Error, "panic") {
		t.Errorf("error = %q, want a panic", boom.Error)
	}
	if fine.State != StateRecording || fine.Reconnects != 0 {
		t.Errorf("other camera disturbed: %+v", fine)
	}
	if gap := checkVideo(t, sink.videoSamples("a/fine")); gap > 1500*time.Millisecond {
		t.Errorf("other camera has a %s gap", gap)
	}
}

// TestWriteErrorKeepsSession: writes failing with ENOSPC for two seconds
// must not end the camera's RTSP session (no reconnect, no offline
// state); recording goes on when writes succeed again.
func TestWriteErrorKeepsSession(t *testing.T) {
	srv := startCams(t, 1, "h264", nil)
	sink := newFakeSink()
	m := newTestManager(t, sink)
	m.Set([]Camera{{ID: "a/full", URL: srv.URL(1)}})
	waitFor(t, 10*time.Second, "recording", func() bool { return status(m, "a/full").State == StateRecording })
	sink.mu.Lock()
	sink.failing = true
	sink.mu.Unlock()
	time.Sleep(2 * time.Second)
	sink.mu.Lock()
	sink.failing = false
	before := len(sink.videoSamplesLocked("a/full"))
	sink.mu.Unlock()
	waitFor(t, 10*time.Second, "samples after the disk came back", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.videoSamplesLocked("a/full")) > before+25
	})
	st := status(m, "a/full")
	if st.Reconnects != 0 || st.State != StateRecording {
		t.Errorf("a write error disturbed the session: %+v", st)
	}
	if n := len(sink.writers("a/full")); n != 1 {
		t.Errorf("%d streams, want the one session", n)
	}
}

func TestManagerSetAndClose(t *testing.T) {
	srv := startCams(t, 3, "h264", nil)
	base := runtime.NumGoroutine()
	sink := newFakeSink()
	m := NewManager(ManagerOptions{Sink: sink, MinBackoff: 100 * time.Millisecond})
	defer m.Close()
	cam := func(i int) Camera { return Camera{ID: fmt.Sprintf("a/c%d", i), Home: "a", URL: srv.URL(i)} }
	ids := func() []string {
		var out []string
		for _, s := range m.Status() {
			out = append(out, s.ID)
		}
		return out
	}
	recording := func(id string) func() bool {
		return func() bool { return status(m, id).State == StateRecording }
	}

	m.Set([]Camera{cam(2), cam(1)})
	if got := fmt.Sprint(ids()); got != "[a/c1 a/c2]" {
		t.Fatalf("ids = %s", got)
	}
	waitFor(t, 5*time.Second, "c1", recording("a/c1"))
	waitFor(t, 5*time.Second, "c2", recording("a/c2"))

	m.Set([]Camera{cam(2), cam(3)})
	if got := fmt.Sprint(ids()); got != "[a/c2 a/c3]" {
		t.Fatalf("ids after swap = %s", got)
	}
	if ws := sink.writers("a/c1"); len(ws) != 1 || !ws[0].closed {
		t.Errorf("removed camera's writer not closed")
	}
	waitFor(t, 5*time.Second, "c3", recording("a/c3"))
	if n := len(sink.writers("a/c2")); n != 1 {
		t.Errorf("unchanged camera restarted: %d streams", n)
	}

	// Same ID, new URL (as after a failover adoption): restart.
	moved := cam(2)
	moved.URL = srv.URL(3)
	m.Set([]Camera{moved, cam(3)})
	waitFor(t, 5*time.Second, "c2 again", func() bool {
		return len(sink.writers("a/c2")) == 2 && status(m, "a/c2").State == StateRecording
	})

	m.Close()
	m.Close() // idempotent
	waitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

func TestSubscribe(t *testing.T) {
	srv := startCams(t, 1, "h264", nil)
	m := newTestManager(t, newFakeSink())
	ch, cancel := m.Subscribe("a/live", 64)
	slow, cancelSlow := m.Subscribe("a/live", 1) // never read: must not block recording
	defer cancelSlow()
	m.Set([]Camera{{ID: "a/live", URL: srv.URL(1)}})
	var video, audio int
	var first *Frame
	timeout := time.After(5 * time.Second)
	for video < 30 {
		select {
		case f := <-ch:
			if first == nil {
				first = &f
			}
			if f.Sample.Track == 0 {
				video++
			} else {
				audio++
			}
		case <-timeout:
			t.Fatalf("got %d video frames", video)
		}
	}
	if first.Stream == nil || !first.Sample.Sync || first.Sample.Track != 0 {
		t.Errorf("first frame = %+v", first)
	}
	if audio == 0 {
		t.Error("no audio frames")
	}
	cancel()
	cancel()
	for range ch { // drains then ends: channel closed
	}
	if st := status(m, "a/live"); st.State != StateRecording || st.FramesDropped != 0 {
		t.Errorf("slow subscriber disturbed recording: %+v", st)
	}
	m.Close()
	if _, ok := <-slow; ok {
		for range slow {
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, url, want string }{
		{"dial rtsp://u:p4ss@h/x failed", "rtsp://u:p4ss@h/x", "dial rtsp://h/x failed"},
		{"bad p4ss", "rtsp://u:p4ss@h/x", "bad xxxxx"},
		{"no creds", "rtsp://h/x", "no creds"},
		{"auth p@ss/w failed", "rtsp://u:p%40ss%2Fw@h/x", "auth xxxxx failed"},
	}
	for _, tt := range tests {
		if got := redactString(tt.in, tt.url); got != tt.want {
			t.Errorf("redactString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := redactURL("rtsp://u:p4ss@h/x"); got != "rtsp://u:xxxxx@h/x" {
		t.Errorf("redactURL = %q", got)
	}
}

// udpPorts finds a free even port and the next one (RTP and RTCP) on
// loopback, as an RTSP server's UDP transport needs.
func udpPorts(t *testing.T) (rtp, rtcp string) {
	t.Helper()
	for i := 0; i < 50; i++ {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port &^ 1
		a.Close()
		c1, err1 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		c2, err2 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if c1 != nil {
			c1.Close()
		}
		if c2 != nil {
			c2.Close()
		}
		if err1 == nil && err2 == nil {
			return fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", p+1)
		}
	}
	t.Fatal("no free UDP port pair")
	return "", ""
}

// TestRecordsOverUDP: transport = "udp" receives RTP over UDP and records.
func TestRecordsOverUDP(t *testing.T) {
	rtpAddr, rtcpAddr := udpPorts(t)
	srv := testutil.Cameras(t, camsim.Options{Cameras: 1, UDPRTPAddress: rtpAddr, UDPRTCPAddress: rtcpAddr})
	sink := newFakeSink()
	m := newTestManager(t, sink)
	m.Set([]Camera{{ID: "rec-a/udp", Home: "rec-a", URL: srv.URL(1), Transport: "udp"}})
	waitFor(t, 10*time.Second, "recording over UDP", func() bool { return status(m, "rec-a/udp").State == StateRecording })
	waitFor(t, 10*time.Second, "2 s of video over UDP", func() bool { return len(sink.videoSamples("rec-a/udp")) >= 50 })
	checkVideo(t, sink.videoSamples("rec-a/udp"))
}
