package recorder

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// awaitGrownBackoff waits until the camera is offline with its next
// attempt at least grown away (the backoff has grown during the outage) and
// returns when that attempt was due.
func awaitGrownBackoff(t *testing.T, m *Manager, id string, grown time.Duration) time.Time {
	t.Helper()
	var due time.Time
	waitFor(t, 60*time.Second, "the backoff to grow past "+grown.String(), func() bool {
		st := status(m, id)
		due = st.NextAttempt
		return st.State == StateOffline && time.Until(due) >= grown
	})
	return due
}

// awaitNewStream waits for a stream after the first n to begin with a key
// frame in the sink and returns when it did.
func awaitNewStream(t *testing.T, sink *fakeSink, m *Manager, id string, n int, limit time.Duration) time.Time {
	t.Helper()
	waitFor(t, limit, "recording to resume", func() bool {
		ws := sink.writers(id)
		return len(ws) > n && len(ws[len(ws)-1].samples) > 0 && status(m, id).State == StateRecording
	})
	return time.Now()
}

// TestCameraBackRecordedAtOnce stops a camera long enough for the
// reconnect backoff to grow, brings it back on the same address, and
// checks that recording resumes within seconds of its return, long before
// the backoff alone would have retried.
func TestCameraBackRecordedAtOnce(t *testing.T) {
	cams := startCams(t, 1, "h264", nil)
	addr := cams.Addr()
	sink := newFakeSink()
	m := NewManager(ManagerOptions{Sink: sink, ReadTimeout: 2 * time.Second}) // default backoff 1 s..30 s, probe every 1 s
	t.Cleanup(m.Close)
	const id = "rec-a/cam1"
	m.Set([]Camera{{ID: id, Home: "rec-a", URL: cams.URL(1)}})
	waitFor(t, 10*time.Second, "recording", func() bool { return status(m, id).State == StateRecording })

	cams.Close()
	due := awaitGrownBackoff(t, m, id, 6*time.Second)
	streams := len(sink.writers(id))
	back, err := camsim.Start(context.Background(), camsim.Options{Listen: addr, Cameras: 1, ClipDir: "../testdata"})
	if err != nil {
		t.Fatalf("restart the camera on %s: %v", addr, err)
	}
	t.Cleanup(back.Close)
	returned := time.Now()
	resumed := awaitNewStream(t, sink, m, id, streams, 20*time.Second)
	took := resumed.Sub(returned)
	t.Logf("camera back: recording again after %s (next backoff attempt was %s away)", took.Round(10*time.Millisecond), due.Sub(returned).Round(100*time.Millisecond))
	if took > 5*time.Second || !resumed.Before(due) {
		t.Errorf("recording resumed %s after the camera came back (backoff attempt due %s after): the probe did not notice it", took, due.Sub(returned))
	}
}

// TestBrokenCameraKeepsBackoff: a camera whose port stays open while its
// sessions fail (here a wrong password) is not retried every probe: its
// backoff still grows.
func TestBrokenCameraKeepsBackoff(t *testing.T) {
	cams := startCams(t, 1, "h264", map[int]camsim.Fault{1: {User: "admin", Pass: "right"}})
	sink := newFakeSink()
	m := NewManager(ManagerOptions{Sink: sink, ReadTimeout: 2 * time.Second, MinBackoff: 500 * time.Millisecond, MaxBackoff: 8 * time.Second, ProbeInterval: 200 * time.Millisecond})
	t.Cleanup(m.Close)
	const id = "rec-a/cam1"
	m.Set([]Camera{{ID: id, Home: "rec-a", URL: "rtsp://admin:wrong@" + cams.Addr() + "/cam1"}})
	start := time.Now()
	awaitGrownBackoff(t, m, id, 2*time.Second)
	elapsed := time.Since(start)
	st := status(m, id)
	// 0.25–0.5, 0.5–1, 1–2 s of backoff before the wait that is ≥ 2 s away:
	// at most a handful of attempts, where probing into every wait would
	// have made one every 200 ms.
	if max := uint64(elapsed/(200*time.Millisecond)) / 2; st.Reconnects > 6 || st.Reconnects > max {
		t.Errorf("%d reconnects in %s: a camera that keeps failing is retried too often", st.Reconnects, elapsed)
	}
	t.Logf("%d reconnects in %s with a wrong password", st.Reconnects, elapsed.Round(10*time.Millisecond))
}

// TestVLCBackRecordedAtOnce is TestCameraBackRecordedAtOnce with VLC as a
// third-party camera over UDP: killed, then started again once the
// backoff has grown.
func TestVLCBackRecordedAtOnce(t *testing.T) {
	vlc := testutil.StartVLC(t, "../testdata/h264-aac.ts")
	sink := newFakeSink()
	m := NewManager(ManagerOptions{Sink: sink, ReadTimeout: 3 * time.Second})
	t.Cleanup(m.Close)
	const id = "rec-a/vlc"
	m.Set([]Camera{{ID: id, Home: "rec-a", URL: vlc.URL(), Transport: "udp"}})
	waitFor(t, 20*time.Second, "recording VLC", func() bool { return status(m, id).State == StateRecording })

	vlc.Stop()
	due := awaitGrownBackoff(t, m, id, 6*time.Second)
	streams := len(sink.writers(id))
	vlc.Start() // returns once VLC's RTSP port accepts connections
	returned := time.Now()
	resumed := awaitNewStream(t, sink, m, id, streams, 20*time.Second)
	took := resumed.Sub(returned)
	t.Logf("VLC back: recording again after %s (next backoff attempt was %s away)", took.Round(10*time.Millisecond), due.Sub(returned).Round(100*time.Millisecond))
	if took > 5*time.Second || !resumed.Before(due) {
		t.Errorf("recording resumed %s after VLC came back (backoff attempt due %s after)", took, due.Sub(returned))
	}
}

// TestVLCRecordsFromTheFirstKeyframe: VLC sends each NAL unit in a
// packet of its own, and its keyframes open with an access unit
// delimiter, a packet from which the RTP client's timestamp decoder cannot
// start. A recorder connecting to it must still record from the first
// keyframe it receives: it loses only the frames before it, less than a
// GOP (25 frames of either clip), never a whole one. Counted in frames
// (the frames received minus those written, up to one moment), over four
// connects at different points of the GOP; one connect may lose a
// keyframe to a dropped packet. H.265 too: VLC's packetizer, not
// gortsplib's, is the one a camera resembles.
func TestVLCRecordsFromTheFirstKeyframe(t *testing.T) {
	for _, tc := range []struct{ codec, clip string }{
		{"H264+AAC", "../testdata/h264-aac.ts"},
		{"H265", "../testdata/h265.ts"},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			vlc := testutil.StartVLC(t, testutil.LongClip(t, tc.clip, 6))
			sink := newFakeSink()
			m := NewManager(ManagerOptions{Sink: sink, ReadTimeout: 3 * time.Second})
			t.Cleanup(m.Close)
			const id, gop = "rec-a/vlc", 25
			var lost []uint64
			for i := range 4 {
				lost = append(lost, framesLostAtConnect(t, m, sink, Camera{ID: id, Home: "rec-a", URL: vlc.URL(), Transport: "udp"}, tc.codec))
				time.Sleep(time.Duration(i) * 330 * time.Millisecond) // the next connect at another point of the GOP
			}
			t.Logf("video frames lost before recording began, per connect: %v (a GOP is %d)", lost, gop)
			over := 0
			for _, n := range lost {
				if n > gop {
					over++
				}
			}
			if over > 1 {
				t.Errorf("%d of %d connects lost more than a GOP before recording began (%v frames): the first keyframe received was not recorded", over, len(lost), lost)
			}
		})
	}
}

// framesLostAtConnect records cam with m until it records, then returns
// the video frames received that were not written (those before the
// first keyframe recorded), and stops it. The camera must send codec.
func framesLostAtConnect(t *testing.T, m *Manager, sink *fakeSink, cam Camera, codec string) uint64 {
	t.Helper()
	streams := len(sink.writers(cam.ID))
	m.Set([]Camera{cam})
	defer func() {
		m.Set(nil)
		waitFor(t, 10*time.Second, "the camera stopped", func() bool { return status(m, cam.ID).ID == "" })
	}()
	waitFor(t, 20*time.Second, "recording VLC", func() bool { return status(m, cam.ID).State == StateRecording })
	read := time.Now()
	st := status(m, cam.ID)
	if st.Codec != codec {
		t.Fatalf("the camera sends %q, want %q", st.Codec, codec)
	}
	// every frame that arrived before read is written once one that
	// arrived after it is (one writer, in order)
	var written uint64
	waitFor(t, 10*time.Second, "a frame written after the count", func() bool {
		written = 0
		for _, w := range sink.writers(cam.ID)[streams:] {
			for _, smp := range w.samples {
				if smp.Track != 0 {
					continue
				}
				if smp.Arrival.After(read) {
					return true
				}
				written++
			}
		}
		return false
	})
	return st.FramesReceived - min(written, st.FramesReceived)
}

func TestProbeAddress(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"rtsp://10.0.1.21/stream1", "10.0.1.21:554"},
		{"rtsps://cam.example/s", "cam.example:322"},
		{"rtsp://u:p%40ss@10.0.1.21:8554/s", "10.0.1.21:8554"},
		{"rtsp://[fe80::1]:10554/s", "[fe80::1]:10554"},
		{"not a url", ""},
	} {
		if got := probeAddress(tc.url); got != tc.want {
			t.Errorf("probeAddress(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if !probe(context.Background(), addr, time.Second) {
		t.Error("probe of a listening port failed")
	}
	l.Close()
	if probe(context.Background(), addr, time.Second) {
		t.Error("probe of a closed port succeeded")
	}
}
