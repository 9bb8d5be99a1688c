package view

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/coder/websocket"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}
	testPPS = []byte{0x08, 0x06, 0x07, 0x08}
)

func testStream() *storage.Stream {
	return &storage.Stream{Camera: "rec-a/cam1", Home: "rec-a", Tracks: []storage.Track{
		{Codec: &mp4.CodecH264{SPS: testSPS, PPS: testPPS}, TimeScale: 90000},
	}}
}

// frame i of a 25 fps stream with a keyframe every gop frames.
func frame(st *storage.Stream, i, gop int, t0 time.Time, size int) recorder.Frame {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(size-4))
	p[4] = 0x41
	if i%gop == 0 {
		p[4] = 0x65
	}
	return recorder.Frame{Stream: st, Sample: storage.Sample{
		DTS: int64(i) * 3600, Sync: i%gop == 0, Payload: p, Arrival: t0.Add(time.Duration(i) * 40 * time.Millisecond)}}
}

// TestMuxerTimeline: fragments carry one video frame each, with its real
// duration; a new stream (reconnect, another recorder) continues on the
// server clock's timeline instead of restarting at zero, and the gap
// between the two stays a gap.
func TestMuxerTimeline(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := newMuxer(t0)
	st := testStream()
	init, err := m.start(frame(st, 0, 25, t0, 100))
	if err != nil {
		t.Fatal(err)
	}
	if init.MIME != `video/mp4; codecs="avc1.42c028"` || init.Codec != "h264" {
		t.Errorf("init: %q %q", init.MIME, init.Codec)
	}
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init.Bytes)); err != nil || len(in.Tracks) != 1 {
		t.Fatalf("init segment does not parse: %v", err)
	}
	var frags [][]byte
	var syncs []bool
	for i := 0; i < 10; i++ {
		f, sync := m.add(frame(st, i, 5, t0, 100).Sample)
		if f != nil {
			frags, syncs = append(frags, f), append(syncs, sync)
		}
	}
	if len(frags) != 9 { // the last frame waits for its duration
		t.Fatalf("%d fragments of 10 frames, want 9", len(frags))
	}
	if !syncs[0] || syncs[1] || !syncs[5] {
		t.Errorf("keyframe marks %v, want fragments 0 and 5", syncs)
	}
	parts := parse(t, frags...)
	if got := parts[3].Tracks[0]; got.BaseTime != 3*3600 || got.Samples[0].Duration != 3600 {
		t.Errorf("fragment 3: base %d duration %d, want %d and 3600", got.BaseTime, got.Samples[0].Duration, 3*3600)
	}

	// the camera comes back 5 s later as a new stream with its own DTS origin
	st2 := testStream()
	back := t0.Add(5 * time.Second)
	fr := frame(st2, 0, 5, back, 100)
	fr.Sample.DTS = 123456789
	if _, err := m.start(fr); err != nil {
		t.Fatal(err)
	}
	m.add(fr.Sample)
	f, _ := m.add(storage.Sample{DTS: 123456789 + 3600, Payload: fr.Sample.Payload, Arrival: back.Add(40 * time.Millisecond)})
	p := parse(t, f)[0].Tracks[0]
	if p.BaseTime != 5*90000 {
		t.Errorf("new stream starts at %d, want %d (5 s on the server clock)", p.BaseTime, 5*90000)
	}
}

func parse(t *testing.T, frags ...[]byte) fmp4.Parts {
	t.Helper()
	var parts fmp4.Parts
	if err := parts.Unmarshal(bytes.Join(frags, nil)); err != nil {
		t.Fatalf("fragments do not parse: %v", err)
	}
	return parts
}

func TestHEVCCodecString(t *testing.T) {
	// Main profile, level 3.1 (93), compatibility flags for Main and Main10
	sps := []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5d, 0xa0}
	if got, want := hevcCodec(sps), "hvc1.1.6.L93.90"; got != want {
		t.Errorf("hevcCodec = %q, want %q", got, want)
	}
}

// fakeSource publishes frames the way the recorder does: never blocking,
// counting what a full subscriber queue lost.
type fakeSource struct {
	mu      sync.Mutex
	subs    []chan recorder.Frame
	dropped atomic.Uint64
}

func (f *fakeSource) SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func()) {
	ch := make(chan recorder.Frame, buf)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch, func() {}
}

func (f *fakeSource) publish(fr recorder.Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- fr:
		default:
			f.dropped.Add(1)
		}
	}
}

// TestStalledViewerIsolated: a browser that stops reading is dropped; the
// healthy viewer beside it keeps receiving, and the source (the recorder)
// never loses a frame to either.
func TestStalledViewerIsolated(t *testing.T) {
	src := &fakeSource{}
	s := New(Options{Source: src, Camera: func(id string) (Camera, bool) { return Camera{ID: id}, id == "rec-a/cam1" }, QueueSize: 64})
	defer s.Close()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/view/ws?camera=rec-a/cam1"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stalled, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow() // never read: its socket buffers fill, then its queue
	healthy, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.CloseNow()
	healthy.SetReadLimit(-1) // a browser takes any message size
	var got atomic.Int64
	var initSeen atomic.Bool
	go func() {
		for {
			typ, b, err := healthy.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageText && strings.Contains(string(b), `"init"`) {
				initSeen.Store(true)
			}
			got.Add(1)
		}
	}()
	waitUntil(t, 5*time.Second, "both viewers counted", func() bool { return s.Viewers() == 2 })

	st := testStream()
	t0 := time.Now()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			src.publish(frame(st, i, 25, t0, 64<<10))
			time.Sleep(10 * time.Millisecond) // 100 frames a second of 64 KiB: 6.4 MB/s
		}
	}()
	waitUntil(t, 45*time.Second, "the stalled viewer dropped", func() bool { return s.Dropped() == 1 })
	before := got.Load()
	waitUntil(t, 10*time.Second, "the healthy viewer still receiving", func() bool { return got.Load() > before+50 })
	if n := s.Dropped(); n != 1 {
		t.Errorf("%d viewers dropped, want only the stalled one", n)
	}
	if !initSeen.Load() {
		t.Error("the healthy viewer got no init message")
	}
	if n := src.dropped.Load(); n != 0 {
		t.Errorf("the source lost %d frames to the view: the hub must never fall behind", n)
	}
	waitUntil(t, 5*time.Second, "the stalled viewer's slot freed", func() bool { return s.Viewers() == 1 })
}

func TestUnknownCamera(t *testing.T) {
	s := New(Options{Source: &fakeSource{}, Camera: func(string) (Camera, bool) { return Camera{}, false }})
	defer s.Close()
	for _, path := range []string{"/view?camera=rec-x/none", "/view/ws?camera=rec-x/none"} {
		rr := httptest.NewRecorder()
		s.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
		if rr.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, rr.Code)
		}
	}
}

// TestViewAt: the recorded view's at is checked as the API checks times
// (api.ParseTime): not a time, or one outside what the index and the export
// can represent, is a 400 naming the parameter; a valid one is in the page.
func TestViewAt(t *testing.T) {
	s := New(Options{Source: &fakeSource{}, Camera: func(id string) (Camera, bool) { return Camera{ID: id}, true }})
	defer s.Close()
	for _, c := range []struct {
		at   string
		code int
		want string
	}{
		{"yesterday", http.StatusBadRequest, "at: \"yesterday\" is not an RFC 3339 time"},
		{"2026-12-01", http.StatusBadRequest, "is not an RFC 3339 time"},
		{"0001-01-01T00:00:00Z", http.StatusBadRequest, "at: \"0001-01-01T00:00:00Z\" is outside the times buddyrec can represent"},
		{"1677-09-21T00:00:00Z", http.StatusBadRequest, "is outside the times"},
		{"2262-04-12T00:00:00Z", http.StatusBadRequest, "is outside the times"},
		{"9999-12-31T23:59:59Z", http.StatusBadRequest, "is outside the times"},
		{"2026-12-01T10:00:00Z", http.StatusOK, `"at":"2026-12-01T10:00:00Z"`},
		{"2026-12-01T10:00:00.25+01:00", http.StatusOK, `"at":"2026-12-01T10:00:00.25+01:00"`},
		{"", http.StatusOK, `"at":""`},
	} {
		rr := httptest.NewRecorder()
		q := url.Values{"camera": {"rec-a/cam1"}, "at": {c.at}}
		s.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/view?"+q.Encode(), nil))
		body := rr.Body.String()
		if rr.Code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("at=%q: %d %q, want %d with %q", c.at, rr.Code, body, c.code, c.want)
		}
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: not %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
