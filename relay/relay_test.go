package relay

import (
	"bytes"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

var testSPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}

func testStream() *storage.Stream {
	return &storage.Stream{Camera: "rec-a/cam1", Home: "rec-a", Tracks: []storage.Track{
		{Codec: &mp4.CodecH264{SPS: testSPS, PPS: []byte{0x08, 0x06, 0x07, 0x08}}, TimeScale: 90000},
		{Codec: &mp4.CodecMPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelCount: 1}}, TimeScale: 48000},
	}}
}

func TestWireRoundTrip(t *testing.T) {
	st := testStream()
	at := time.Unix(1795290424, 123456789)
	in := []storage.Sample{
		{Track: 0, DTS: 90000, PTSOffset: 3600, Sync: true, Payload: []byte{0, 0, 0, 1, 0x65}, Arrival: at},
		{Track: 1, DTS: 48000, Sync: true, Payload: []byte{1, 2, 3}, Arrival: at},
		{Track: 0, DTS: 93600, Payload: []byte{0, 0, 0, 1, 0x41}},
		// as the recorder hands video over: in pieces
		{Track: 0, DTS: 97200, PTSOffset: -3600, Pieces: [][]byte{{0, 0, 0, 2}, {0x41}, {}, {7}}, Arrival: at},
	}
	var buf bytes.Buffer
	enc := &encoder{w: &buf}
	if err := enc.stream(st); err != nil {
		t.Fatal(err)
	}
	for _, s := range in {
		if err := enc.frame(s); err != nil {
			t.Fatal(err)
		}
	}
	dec := newDecoder(&buf)
	var got []recorder.Frame
	for range in {
		fr, err := dec.next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fr)
	}
	if got[0].Stream != got[2].Stream || got[0].Stream.Camera != "rec-a/cam1" || got[0].Stream.Home != "rec-a" {
		t.Errorf("stream: %+v", got[0].Stream)
	}
	if !reflect.DeepEqual(got[0].Stream.Tracks, st.Tracks) {
		t.Errorf("tracks %+v, want %+v", got[0].Stream.Tracks, st.Tracks)
	}
	for i, fr := range got {
		g, w := fr.Sample, in[i]
		if g.Track != w.Track || g.DTS != w.DTS || g.PTSOffset != w.PTSOffset || g.Sync != w.Sync ||
			!g.Arrival.Equal(w.Arrival) || !bytes.Equal(g.Bytes(), w.Bytes()) {
			t.Errorf("sample %d: %+v, want %+v", i, g, w)
		}
	}
	// a record claiming more than the bound is refused, not allocated
	bad := bytes.NewReader([]byte{'F', 0xff, 0xff, 0xff, 0xff})
	if _, err := newDecoder(bad).next(); err == nil {
		t.Error("oversized record accepted")
	}
}

// recorderStub is a recorder's live fan-out: frames published to it reach
// its subscribers, as recorder.Manager's do.
type recorderStub struct {
	mu   sync.Mutex
	subs map[chan recorder.Frame]bool
	gop  recorder.GOP
}

func newStub() *recorderStub { return &recorderStub{subs: map[chan recorder.Frame]bool{}} }

func (r *recorderStub) Subscribe(id string, buf int) (<-chan recorder.Frame, func()) {
	return r.SubscribeFromKeyframe(id, buf)
}

func (r *recorderStub) SubscribeFromKeyframe(id string, buf int) (<-chan recorder.Frame, func()) {
	ch := make(chan recorder.Frame, buf)
	r.mu.Lock()
	for _, f := range r.gop.Frames() {
		ch <- f
	}
	r.subs[ch] = true
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		if r.subs[ch] {
			delete(r.subs, ch)
			close(ch)
		}
		r.mu.Unlock()
	}
}

func (r *recorderStub) publish(f recorder.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gop.Add(f)
	for ch := range r.subs {
		select {
		case ch <- f:
		default:
		}
	}
}

// TestSiteFollowsCamera: a server that does not record a camera relays it
// from the recorder; when the camera moves to another recorder, the Site
// opens the new one and switches at its first keyframe, having delivered
// the old recorder's frames until then (make before break).
func TestSiteFollowsCamera(t *testing.T) {
	recA, recB := newStub(), newStub()
	srvA := httptest.NewServer(Handler(recA, func(string) bool { return true }, nil))
	defer srvA.Close()
	srvB := httptest.NewServer(Handler(recB, func(string) bool { return true }, nil))
	defer srvB.Close()
	var where atomic.Value
	where.Store(Location{Server: "rec-a", URL: srvA.URL})
	site := NewSite(Options{Local: newStub(), Locate: func(string) (Location, bool) { return where.Load().(Location), true }, Follow: 50 * time.Millisecond})
	defer site.Close()

	frames, cancel := site.SubscribeFromKeyframe("rec-a/cam1", 1024)
	defer cancel()
	stA, stB := testStream(), testStream()
	const gop = 10
	mk := func(st *storage.Stream, i int, tag byte) recorder.Frame {
		return recorder.Frame{Stream: st, Sample: storage.Sample{DTS: int64(i) * 3600, Sync: i%gop == 0, Payload: []byte{tag, byte(i)}}}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // both recorders record: A from frame 0, B joins later with its own GOP phase
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			recA.publish(mk(stA, i, 'A'))
			recB.publish(mk(stB, i+3, 'B'))
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	next := func() recorder.Frame {
		t.Helper()
		select {
		case f := <-frames:
			return f
		case <-time.After(10 * time.Second):
			t.Fatal("no frame within 10 s")
			return recorder.Frame{}
		}
	}
	first := next()
	if first.Sample.Payload[0] != 'A' || !first.Sample.Sync {
		t.Fatalf("first relayed frame %v sync=%v, want rec-a's keyframe", first.Sample.Payload, first.Sample.Sync)
	}
	for i := 0; i < 30; i++ {
		next()
	}
	where.Store(Location{Server: "rec-b", URL: srvB.URL})
	sawB := false
	for i := 0; i < 500 && !sawB; i++ {
		f := next()
		if f.Sample.Payload[0] == 'B' {
			sawB = true
			if !f.Sample.Sync {
				t.Errorf("switched to rec-b at a non-keyframe")
			}
		}
	}
	if !sawB {
		t.Fatal("never switched to rec-b")
	}
	for i := 0; i < 50; i++ {
		if f := next(); f.Sample.Payload[0] != 'B' {
			t.Fatalf("a frame of rec-a after the switch to rec-b")
		}
	}
	if n := site.Upstreams(); n != 1 {
		t.Errorf("%d upstreams for one camera, want 1", n)
	}
}
