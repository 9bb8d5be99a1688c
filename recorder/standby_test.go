package recorder

import (
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

// TestRingHoldsWindowFromAKeyframe: a hot standby's ring starts at a
// keyframe, reaches back at least window + 2 GOPs and not a GOP more, and
// holds nothing when one GOP exceeds its byte bound.
func TestRingHoldsWindowFromAKeyframe(t *testing.T) {
	const fps, gop = 25, 25 // 1 s GOP
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	st := &storage.Stream{Camera: "rec-a/cam1"}
	r := ring{window: 3 * time.Second, maxBytes: 1 << 20}
	for i := range 20 * fps {
		r.add(ringEntry{stream: st, sample: storage.Sample{Track: 0, Sync: i%gop == 0, DTS: int64(i) * 3600,
			Payload: make([]byte, 1000), Arrival: start.Add(time.Duration(i) * time.Second / fps)}})
		if i%7 == 0 { // audio between frames
			r.add(ringEntry{stream: st, sample: storage.Sample{Track: 1, Sync: true, Payload: make([]byte, 10),
				Arrival: start.Add(time.Duration(i) * time.Second / fps)}})
		}
		if len(r.entries) == 0 {
			t.Fatalf("ring empty after frame %d", i)
		}
		if first := r.entries[0].sample; first.Track != 0 || !first.Sync {
			t.Fatalf("ring starts with %+v, want a video keyframe", first)
		}
	}
	span := r.span()
	if min, max := 3*time.Second+2*time.Second-time.Second/fps, 3*time.Second+3*time.Second; span < min || span > max {
		t.Errorf("ring spans %v, want [%v, %v] (window 3 s + 2 GOPs of 1 s)", span, min, max)
	}
	sum := 0
	for _, e := range r.entries {
		sum += e.size
	}
	if r.bytes != sum {
		t.Errorf("ring counts %d bytes, holds %d", r.bytes, sum)
	}

	small := ring{window: 3 * time.Second, maxBytes: 10_000}
	for i := range 3 * fps {
		small.add(ringEntry{stream: st, sample: storage.Sample{Track: 0, Sync: i%50 == 0, Payload: make([]byte, 1000),
			Arrival: start.Add(time.Duration(i) * time.Second / fps)}})
		if small.bytes > small.maxBytes {
			t.Fatalf("ring holds %d bytes, bound %d", small.bytes, small.maxBytes)
		}
	}
}

// TestHotStandbyTakesOverInPlace: a hot standby writes nothing while it
// holds; switched to recording it writes its ring from a keyframe that is
// at least the window old, then the live samples, on the same RTSP
// session (no reconnect), with no hole in the video; switched back it
// closes its file and holds again.
func TestHotStandbyTakesOverInPlace(t *testing.T) {
	srv := startCams(t, 1, "h264", nil)
	hotTakeover(t, Camera{ID: "rec-a/cam1", Home: "rec-a", URL: srv.URL(1), Standby: StandbyHot})
}

// TestHotStandbyTakesOverInPlaceVLC is TestHotStandbyTakesOverInPlace
// with VLC as a third-party camera over UDP.
func TestHotStandbyTakesOverInPlaceVLC(t *testing.T) {
	vlc := testutil.StartVLC(t, "../testdata/h264-aac.ts")
	hotTakeover(t, Camera{ID: "rec-a/vlc", Home: "rec-a", URL: vlc.URL(), Transport: "udp", Standby: StandbyHot})
}

func hotTakeover(t *testing.T, cam Camera) {
	sink := newFakeSink()
	m := NewManager(ManagerOptions{Sink: sink, ReadTimeout: 3 * time.Second, StandbyWindow: 2 * time.Second})
	t.Cleanup(m.Close)
	m.Set([]Camera{cam})
	waitFor(t, 20*time.Second, "ring holds the window", func() bool {
		s := status(m, cam.ID)
		return s.State == StateRecording && s.HeldSpan >= 2*time.Second
	})
	time.Sleep(1500 * time.Millisecond)
	if ws := sink.writers(cam.ID); len(ws) != 0 {
		t.Fatalf("a hot standby wrote %d streams", len(ws))
	}
	held := status(m, cam.ID)
	if held.Standby != StandbyHot || held.HeldBytes <= 0 {
		t.Errorf("status %+v", held)
	}

	cam.Standby = StandbyNone
	takeover := time.Now()
	m.Set([]Camera{cam})
	time.Sleep(2 * time.Second)
	st := status(m, cam.ID)
	if st.Reconnects != 0 || st.Standby != StandbyNone || st.State != StateRecording {
		t.Fatalf("after takeover: %+v", st)
	}
	ws := sink.writers(cam.ID)
	if len(ws) != 1 {
		t.Fatalf("%d streams after takeover, want 1", len(ws))
	}
	video := videoOf(ws[0].samples)
	gap := checkVideo(t, video)
	if gap > 300*time.Millisecond {
		t.Errorf("video hole of %v across the takeover", gap)
	}
	if first := video[0].Arrival; takeover.Sub(first) < 2*time.Second {
		t.Errorf("written from %v before the takeover, want at least the 2 s window", takeover.Sub(first))
	}
	if last := video[len(video)-1].Arrival; time.Since(last) > 500*time.Millisecond {
		t.Errorf("live samples stopped %v ago", time.Since(last))
	}

	cam.Standby = StandbyHot
	m.Set([]Camera{cam})
	time.Sleep(500 * time.Millisecond)
	ws = sink.writers(cam.ID)
	if len(ws) != 1 || !ws[0].closed {
		t.Fatalf("back to hot: %d streams, closed %v", len(ws), len(ws) > 0 && ws[0].closed)
	}
	if st := status(m, cam.ID); st.Reconnects != 0 {
		t.Errorf("reconnected %d times", st.Reconnects)
	}
}
