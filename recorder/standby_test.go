package recorder

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

// ringSample is frame i of a camera at fps with a keyframe every gop
// frames, its payload size bytes of a pattern that names the frame.
func ringSample(start time.Time, i, fps, gop, size int) storage.Sample {
	p := make([]byte, size)
	for k := range p {
		p[k] = byte(i + k)
	}
	return storage.Sample{Track: 0, Sync: i%gop == 0, DTS: int64(i) * 3600, PTSOffset: int32(i % 3),
		Payload: p, Arrival: start.Add(time.Duration(i) * time.Second / time.Duration(fps))}
}

// TestRingHoldsWindowFromAKeyframe: a hot standby's ring holds the last
// window + 2 GOPs of samples (to a frame) and always a keyframe, never
// holds more than its byte bound (evicting to a keyframe, or holding
// nothing when one GOP exceeds it), occupies no more memory than it
// holds (to two pages), and hands back exactly what it was given, in
// order, from its first keyframe, which is at most a GOP into it; after
// that its arena is reused.
func TestRingHoldsWindowFromAKeyframe(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	st := &storage.Stream{Camera: "rec-a/cam1"}
	for _, tc := range []struct {
		name             string
		fps, gop, frames int
		size, keySize    int // payload bytes of a frame and of a keyframe
		window           time.Duration
		maxBytes         int
		audio            bool
		// the span held at the end: [min, max]; 0, 0: nothing held
		min, max time.Duration
	}{
		{name: "1 s GOP, 3 s window", fps: 25, gop: 25, frames: 20 * 25, size: 1000, keySize: 5000,
			window: 3 * time.Second, maxBytes: 1 << 20, audio: true,
			min: 5*time.Second - 40*time.Millisecond, max: 5 * time.Second},
		{name: "4 s GOP, 3 s window", fps: 25, gop: 100, frames: 30 * 25, size: 1000, keySize: 20000,
			window: 3 * time.Second, maxBytes: 4 << 20,
			min: 11*time.Second - 40*time.Millisecond, max: 11 * time.Second},
		{name: "a frame larger than a page and wrapping the arena", fps: 10, gop: 10, frames: 200, size: 7000, keySize: 30000,
			window: time.Second, maxBytes: 300_000,
			min: 3*time.Second - 100*time.Millisecond, max: 3 * time.Second},
		{name: "the byte bound evicts whole GOPs", fps: 25, gop: 25, frames: 20 * 25, size: 1000, keySize: 5000,
			window: 3 * time.Second, maxBytes: 100_000,
			min: 2*time.Second - 40*time.Millisecond, max: 3 * time.Second},
		{name: "one GOP over the bound holds nothing", fps: 25, gop: 50, frames: 75, size: 1000, keySize: 1000,
			window: 3 * time.Second, maxBytes: 10_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ring{window: tc.window, maxBytes: tc.maxBytes}
			defer r.close()
			type held struct {
				track int
				dts   int64
				pay   []byte
			}
			var given []held // every sample added, to compare what the ring hands back
			for i := range tc.frames {
				size := tc.size
				if i%tc.gop == 0 {
					size = tc.keySize
				}
				smp := ringSample(start, i, tc.fps, tc.gop, size)
				r.add(st, smp)
				given = append(given, held{0, smp.DTS, smp.Payload})
				if tc.audio && i%3 == 0 { // audio between frames
					a := storage.Sample{Track: 1, Sync: true, DTS: int64(i), Payload: []byte{byte(i), 1, 2}, Arrival: smp.Arrival}
					r.add(st, a)
					given = append(given, held{1, a.DTS, a.Payload})
				}
				if r.bytes > tc.maxBytes {
					t.Fatalf("frame %d: ring holds %d bytes, bound %d", i, r.bytes, tc.maxBytes)
				}
				sum := 0
				for _, e := range r.held() {
					sum += int(e.size)
				}
				if r.bytes != sum || r.arena.head-r.arena.tail != int64(sum) {
					t.Fatalf("frame %d: ring counts %d bytes, arena %d, entries %d", i, r.bytes, r.arena.head-r.arena.tail, sum)
				}
				if dead := len(r.entries) - len(r.held()); dead >= max(64, len(r.entries)/8) {
					t.Fatalf("frame %d: %d evicted entries kept for %d held", i, dead, len(r.held()))
				}
				if res := r.resident(); res > int64(sum)+2*pageSize {
					t.Fatalf("frame %d: %d bytes of pages for %d held", i, res, sum)
				}
				if h, u := r.held(), r.usable(); len(h) > 0 && (len(u) == 0 || !u[0].key() ||
					u[0].arrival-h[0].arrival > time.Duration(tc.gop)*time.Second/time.Duration(tc.fps)) {
					t.Fatalf("frame %d: ring holds %d samples, %d of them from its first keyframe on; want a keyframe at most a GOP in", i, len(h), len(u))
				}
			}
			if tc.max == 0 {
				if len(r.held()) != 0 || r.resident() != 0 {
					t.Fatalf("ring holds %d samples (%d bytes of pages), want none", len(r.held()), r.resident())
				}
				return
			}
			if span := r.span(); span < tc.min || span > tc.max {
				t.Errorf("ring spans %v, want [%v, %v]", span, tc.min, tc.max)
			}

			// What comes out is what went in, from the first keyframe held on.
			want := given[len(given)-len(r.usable()):]
			mem := &r.arena.mem[0]
			i := 0
			r.drain(func(s *storage.Stream, smp storage.Sample) bool {
				w := want[i]
				if s != st || smp.Track != w.track || smp.DTS != w.dts || !bytes.Equal(smp.Payload, w.pay) {
					t.Fatalf("sample %d handed back as track %d dts %d (%d bytes), want track %d dts %d (%d bytes)",
						i, smp.Track, smp.DTS, len(smp.Payload), w.track, w.dts, len(w.pay))
				}
				if i == 0 && (smp.Track != 0 || !smp.Sync) {
					t.Fatalf("handed back from %+v, want a keyframe", smp)
				}
				i++
				return true
			})
			if i != len(want) || len(r.held()) != 0 || r.bytes != 0 || r.resident() != 0 {
				t.Fatalf("drained %d of %d; left %d entries, %d bytes, %d of pages", i, len(want), len(r.held()), r.bytes, r.resident())
			}
			// Reused: holding again takes no new reservation.
			for k := range 3 * tc.gop {
				r.add(st, ringSample(start.Add(time.Hour), k, tc.fps, tc.gop, tc.size))
			}
			if len(r.held()) == 0 || &r.arena.mem[0] != mem {
				t.Errorf("after the drain: %d samples held, same reservation %v", len(r.held()), &r.arena.mem[0] == mem)
			}
		})
	}
}

// TestPayloadArena: bytes come back as written across the arena's end
// and across its growth; it refuses what exceeds its limit; its
// reservation grows only as what it holds needs, never past twice
// plus two pages of the most it held; pages left behind are returned to the operating system
// (they read as zeros); a reset keeps the reservation, close gives it
// back.
func TestPayloadArena(t *testing.T) {
	page := int(pageSize)
	checked := 0 // cases where a returned page was looked at
	for _, tc := range []struct {
		name  string
		limit int
		sizes []int // written in turn; each write first discards what the limit needs
	}{
		{name: "small samples", limit: 3 * page, sizes: []int{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400}},
		{name: "samples over a page", limit: 5 * page, sizes: []int{page + 1, 2*page - 1, 3 * page, 10, page, 4 * page, 7, 2 * page}},
		{name: "a sample of the whole limit", limit: 2 * page, sizes: []int{10, 2 * page, 1, 2 * page, page}},
		{name: "growing past the first reservation", limit: 4 << 20, sizes: []int{
			100_000, 90_000, 150_000, 5, 300_000, 400_000, 700_000, 1 << 20, 100, 1 << 20, 2 << 20, 50_000, 4 << 20, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newPayloadArena(tc.limit)
			defer a.close()
			type held struct {
				pos int64
				b   []byte
			}
			var q []held
			var mem *byte
			var size, peak int64
			for i, n := range tc.sizes {
				for !a.fits(n) {
					q = q[1:]
					if len(q) > 0 {
						a.discard(q[0].pos)
					} else {
						a.reset()
					}
				}
				b := make([]byte, n)
				for k := range b {
					b[k] = byte(i*7 + k)
				}
				pos, err := a.write(b)
				if err != nil {
					t.Fatal(err)
				}
				q = append(q, held{pos, b})
				var sum int64
				for _, h := range q {
					if got := a.read(h.pos, len(h.b)); !bytes.Equal(got, h.b) {
						t.Fatalf("after write %d: bytes at %d changed", i, h.pos)
					}
					sum += int64(len(h.b))
				}
				if a.head-a.tail != sum || sum > int64(tc.limit) {
					t.Fatalf("after write %d: arena holds %d, written %d, limit %d", i, a.head-a.tail, sum, tc.limit)
				}
				if res := a.resident(); res > sum+2*pageSize {
					t.Fatalf("after write %d: %d bytes of pages for %d held", i, res, sum)
				}
				if grown := mem != nil && &a.mem[0] != mem; grown && a.size <= size {
					t.Fatalf("write %d reserved again without growing (%d bytes)", i, a.size)
				}
				peak = max(peak, sum)
				if a.size > max(initialArena, 2*(peak+2*pageSize)) {
					t.Fatalf("after write %d: reservation of %d bytes, at most %d held", i, a.size, peak)
				}
				mem, size = &a.mem[0], a.size
			}
			if a.fits(tc.limit + 1 - int(a.head-a.tail)) {
				t.Errorf("fits more than the limit")
			}
			// Pages behind the tail are returned: they read as zeros.
			if len(q) > 1 {
				a.discard(q[len(q)-1].pos)
				// the page before the tail's, unless the head came round to it again
				behind := (a.tail/pageSize - 1) * pageSize
				if behind >= 0 && behind+a.size >= a.head+pageSize && runtime.GOOS == "linux" {
					checked++
					off := behind % a.size
					for k, c := range a.mem[off : off+pageSize] {
						if c != 0 {
							t.Fatalf("a page behind the tail still holds byte %d = %d: not returned", k, c)
						}
					}
				}
			}
			a.reset()
			if a.resident() != 0 || a.mem == nil {
				t.Errorf("after reset: %d bytes of pages, reservation kept %v", a.resident(), a.mem != nil)
			}
			a.close()
			if a.mem != nil {
				t.Errorf("close kept the reservation")
			}
			if _, err := a.write([]byte{1}); err != nil || a.mem == nil {
				t.Errorf("write after close: %v", err)
			}
		})
	}
	if checked == 0 && runtime.GOOS == "linux" {
		t.Error("no case looked at a returned page")
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
	if held.Standby != StandbyHot || held.HeldBytes <= 0 || held.HeldResident < held.HeldBytes || held.HeldNeed < 2*time.Second {
		t.Errorf("status %+v", held)
	}
	// A hot standby keeps no GOP for viewers (its ring holds the footage
	// once): a viewer gets nothing at once.
	frames, unsubscribe := m.SubscribeFromKeyframe(cam.ID, 512)
	if n := len(frames); n != 0 {
		t.Errorf("a hot standby handed a new viewer %d cached frames", n)
	}
	unsubscribe()

	cam.Standby = StandbyNone
	takeover := time.Now()
	m.Set([]Camera{cam})
	time.Sleep(2 * time.Second)
	st := status(m, cam.ID)
	if st.Reconnects != 0 || st.Standby != StandbyNone || st.State != StateRecording {
		t.Fatalf("after takeover: %+v", st)
	}
	// "recording since" is the takeover, when the writer began writing
	// the ring: not the standby session's start, which is older
	if st.Since.Before(takeover) || st.Since.After(takeover.Add(time.Second)) {
		t.Errorf("since %v, %v after the takeover was ordered: want the takeover's moment", st.Since, st.Since.Sub(takeover))
	}
	ws := sink.writers(cam.ID)
	if len(ws) != 1 {
		t.Fatalf("%d streams after takeover, want 1", len(ws))
	}
	// ... and not before the ring was written: its last held sample
	// (arrived before the order) was written at or before since
	sink.mu.Lock()
	var ringWritten time.Time
	for i, smp := range ws[0].samples {
		if smp.Arrival.Before(takeover) {
			ringWritten = ws[0].written[i]
		}
	}
	sink.mu.Unlock()
	if st.Since.Before(ringWritten) {
		t.Errorf("since %v is %v before the ring was written", st.Since, ringWritten.Sub(st.Since))
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
	// Recording, it caches the GOP again: a viewer starts at once.
	frames, unsubscribe = m.SubscribeFromKeyframe(cam.ID, 512)
	if len(frames) == 0 {
		t.Errorf("after the takeover a new viewer got no cached GOP")
	} else if f := <-frames; !f.Startable() {
		t.Errorf("the cached GOP starts with %+v, not a keyframe", f.Sample)
	}
	unsubscribe()

	cam.Standby = StandbyHot
	backHot := time.Now()
	m.Set([]Camera{cam})
	time.Sleep(500 * time.Millisecond)
	if st := status(m, cam.ID); st.Since.Before(backHot) {
		t.Errorf("back to hot: since %v is before the change (%v)", st.Since, backHot)
	}
	ws = sink.writers(cam.ID)
	if len(ws) != 1 || !ws[0].closed {
		t.Fatalf("back to hot: %d streams, closed %v", len(ws), len(ws) > 0 && ws[0].closed)
	}
	if st := status(m, cam.ID); st.Reconnects != 0 {
		t.Errorf("reconnected %d times", st.Reconnects)
	}
}
