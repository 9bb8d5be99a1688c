package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/recorder"
)

// tapSource sits between the recorder and live. Each Subscribe takes the
// recorder's subscription with a deep buffer and forwards it into a channel
// of the size live asked for, with the recorder hub's own rule: a full
// channel drops the frame and counts it. Because the forwarder never waits,
// its drop count is exactly what the hub would drop if live stopped
// draining its subscription, which the hub does not expose.
type tapSource struct {
	rec *recorder.Manager
	wg  sync.WaitGroup

	mu      sync.Mutex
	subs    int
	dropped int
	maxLen  int      // most frames ever waiting in live's channel
	video   []uint32 // RTP timestamps of video frames handed to live, in order
}

func (s *tapSource) Subscribe(id string, buf int) (<-chan recorder.Frame, func()) {
	in, cancel := s.rec.Subscribe(id, 1<<14)
	out := make(chan recorder.Frame, buf)
	s.mu.Lock()
	s.subs++
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for fr := range in {
			select {
			case out <- fr:
				n := len(out)
				s.mu.Lock()
				s.maxLen = max(s.maxLen, n)
				if tr := fr.Sample.Track; tr >= 0 && tr < len(fr.Stream.Tracks) && fr.Stream.Tracks[tr].Codec.IsVideo() {
					s.video = append(s.video, uint32(fr.Sample.DTS+int64(fr.Sample.PTSOffset)))
				}
				s.mu.Unlock()
			default:
				s.mu.Lock()
				s.dropped++
				s.mu.Unlock()
			}
		}
	}()
	return out, cancel
}

// fed returns a copy of the video timestamps handed to live so far.
func (s *tapSource) fed() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint32(nil), s.video...)
}

// healthyViewer is a gortsplib client reading the live H.264 track over
// TCP and keeping the RTP timestamp of every complete frame it decodes.
type healthyViewer struct {
	c    *gortsplib.Client
	done chan error // Wait's result

	mu     sync.Mutex
	frames []uint32
	seen   map[uint32]bool
}

func playHealthy(t *testing.T, url string) *healthyViewer {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	v := &healthyViewer{
		c:    &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp},
		done: make(chan error, 1),
		seen: map[uint32]bool{},
	}
	if err := v.c.Start2(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.c.Close)
	desc, _, err := v.c.Describe(u)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatal("no H.264 track in the live SDP")
	}
	if _, err := v.c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatalf("setup: %v", err)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	v.c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		au, err := dec.Decode(pkt)
		if err != nil || len(au) == 0 {
			if err != nil && !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				t.Errorf("healthy viewer: decode: %v", err)
			}
			return
		}
		v.mu.Lock()
		v.frames = append(v.frames, pkt.Timestamp)
		v.seen[pkt.Timestamp] = true
		v.mu.Unlock()
	})
	if _, err := v.c.Play(nil); err != nil {
		t.Fatalf("play: %v", err)
	}
	go func() { v.done <- v.c.Wait() }()
	return v
}

func (v *healthyViewer) received() (first uint32, n int, seen func(uint32) bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.frames) > 0 {
		first = v.frames[0]
	}
	return first, len(v.frames), func(ts uint32) bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.seen[ts]
	}
}

// countHandler counts log records by message.
type countHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }

func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	return nil
}

func (h *countHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}

// TestSlowViewerIsolated: one viewer plays and then never reads again. The
// healthy viewer beside it receives every frame the recorder hands to live,
// the recorder's live subscription never overflows (live never stops
// draining it), recording loses nothing, and the stalled viewer is
// disconnected so it does not hold a viewer slot.
func TestSlowViewerIsolated(t *testing.T) {
	cams := testutil.Cameras(t, camsim.Options{Cameras: 1})
	sink := &countSink{}
	rec := recorder.NewManager(recorder.ManagerOptions{Sink: sink})
	src := &tapSource{rec: rec}
	logs := &countHandler{n: map[string]int{}}
	t.Cleanup(src.wg.Wait) // runs after rec.Close has closed every subscription
	t.Cleanup(rec.Close)
	rec.Set([]recorder.Camera{{ID: camID, Home: "rec-a", URL: cams.URL(1)}})
	srv, err := Start(context.Background(), Options{
		Listen:  "127.0.0.1:0",
		Source:  src,
		Cameras: func() []string { return []string{camID} },
		Logger:  slog.New(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	url := "rtsp://" + srv.Addr() + "/" + camID

	healthy := playHealthy(t, url)
	testutil.Eventually(t, 10*time.Second, "a frame at the healthy viewer", func() bool { _, n, _ := healthy.received(); return n > 0 })

	stalled := dialViewer(t, srv.Addr()) // 4 KiB receive buffer
	if code, err := stalled.play(url); err != nil || code != 200 {
		t.Fatalf("stalled viewer: play: %d %v", code, err)
	}
	if n := srv.Viewers(); n != 2 {
		t.Fatalf("Viewers() = %d after two viewers played, want 2", n)
	}
	// from here on the stalled viewer never reads: its socket buffers and
	// then its gortsplib write queue fill up. With the default 256 KiB
	// ViewerSendBuffer that takes about 5 s of this 2 Mbit/s clip; with the
	// kernel's autotuned 4 MiB it took 18 s, which the 15 s bound rejects.
	start := time.Now()
	testutil.EventuallyMsg(t, 15*time.Second, func() string {
		if n := srv.Viewers(); n != 1 {
			return fmt.Sprintf("stalled viewer still holds a slot: Viewers() = %d", n)
		}
		return ""
	})
	t.Logf("stalled viewer dropped after %v", time.Since(start).Round(100*time.Millisecond))

	// the server really closed the stalled connection: draining what it
	// buffered ends in EOF or a reset, not in our read deadline (a larger
	// receive buffer now, or the 4 KiB window trickles at the persist timer)
	stalled.conn.(*net.TCPConn).SetReadBuffer(1 << 20)             //nolint:errcheck
	stalled.conn.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := io.Copy(io.Discard, stalled.conn); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("stalled viewer's connection is still open after it left Viewers()")
		}
	}

	// the healthy viewer keeps up: it receives 50 more frames (2 s) beyond
	// what had been fed when the stalled one was dropped
	target := len(src.fed()) + 50
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("frame %d of the feed at the healthy viewer", target), func() bool {
		f := src.fed()
		if len(f) < target {
			return false
		}
		_, _, seen := healthy.received()
		return seen(f[target-1])
	})
	select {
	case err := <-healthy.done:
		t.Fatalf("healthy viewer was disconnected: %v", err)
	default:
	}

	// every frame fed to live from the healthy viewer's first one to the
	// target reached it: none was lost while the other viewer was stalled
	fed := src.fed()[:target]
	first, n, seen := healthy.received()
	i0 := -1
	for i, ts := range fed {
		if ts == first {
			i0 = i
			break
		}
	}
	if i0 < 0 {
		t.Fatalf("healthy viewer's first frame (ts %d) was never fed", first)
	}
	var missing int
	for _, ts := range fed[i0:] {
		if !seen(ts) {
			missing++
		}
	}
	t.Logf("healthy viewer: %d frames fed since its first, %d received in all, %d missing", len(fed)-i0, n, missing)
	if missing > 0 {
		t.Errorf("healthy viewer missed %d of %d frames while another viewer was stalled", missing, len(fed)-i0)
	}

	if n := logs.count("dropping slow live viewer"); n > 1 {
		t.Errorf("the stalled viewer was logged as dropped %d times, want once", n)
	}

	src.mu.Lock()
	subs, dropped, maxLen := src.subs, src.dropped, src.maxLen
	src.mu.Unlock()
	t.Logf("live subscription: %d frames dropped, at most %d queued", dropped, maxLen)
	if subs != 1 {
		t.Errorf("live subscribed %d times, want 1 (one feed shared by both viewers)", subs)
	}
	if dropped != 0 {
		t.Errorf("live's recorder subscription dropped %d frames: the feed stopped draining it", dropped)
	}
	var st recorder.Status
	for _, s := range rec.Status() {
		if s.ID == camID {
			st = s
		}
	}
	if st.FramesDropped != 0 {
		t.Errorf("recorder dropped %d frames", st.FramesDropped)
	}
	for i, vs := range sink.video() {
		for j := 1; j < len(vs); j++ {
			if d := vs[j].DTS - vs[j-1].DTS; d <= 0 || d >= 2*3600 {
				// (camsim's loop point steps up to 6000: the clip's audio
				// runs on after its last video frame)
				t.Fatalf("recorded stream %d: DTS step %d at sample %d: a frame is missing", i, d, j)
			}
		}
	}
}
