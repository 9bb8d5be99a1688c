package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

func TestWriteReadBack(t *testing.T) {
	h264aac := loadClip(t, "../testdata/h264-aac.ts")
	h265 := loadClip(t, "../testdata/h265.ts")
	h265aac := *h265
	h265aac.audio = h264aac.audio
	h265aac.asamples = h264aac.asamples
	h265aac.audioCount = h264aac.audioCount

	cases := []struct {
		name       string
		clip       *clip
		audio      bool
		codec      string
		probeVideo string
	}{
		{"h264+aac", h264aac, true, "h264+aac", "h264"},
		{"h264", h264aac, false, "h264", "h264"},
		{"h265+aac", &h265aac, true, "h265+aac", "hevc"},
		{"h265", h265, false, "h265", "hevc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openTestStore(t, dir, nil)
			w, err := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: tc.clip.tracks(tc.audio)})
			if err != nil {
				t.Fatal(err)
			}
			samples := tc.clip.stream(testEpoch, 1, tc.audio)
			writeAll(t, w, samples)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			segs := checkConsistent(t, st, dir)
			// 10 s of footage, keyframe every second, 4 s segments
			if len(segs) != 3 {
				t.Fatalf("got %d segments, want 3: %+v", len(segs), segs)
			}
			if !segs[0].Start.Equal(testEpoch) {
				t.Errorf("first segment starts %v, want %v", segs[0].Start, testEpoch)
			}
			total := segs[len(segs)-1].End.Sub(segs[0].Start)
			if total < 9900*time.Millisecond || total > 10100*time.Millisecond {
				t.Errorf("recorded %v, want 10s", total)
			}
			var frames, audioFrames int
			for i, seg := range segs {
				if seg.Codec != tc.codec || seg.Home != "rec-a" || seg.RecordedBy != "rec-a" {
					t.Errorf("segment %d: codec %q home %q recorded_by %q", i, seg.Codec, seg.Home, seg.RecordedBy)
				}
				if i > 0 && seg.Start.Sub(segs[i-1].End).Abs() > 50*time.Millisecond {
					t.Errorf("gap between segment %d and %d: %v", i-1, i, seg.Start.Sub(segs[i-1].End))
				}
				if i < len(segs)-1 {
					if d := seg.End.Sub(seg.Start); d != 4*time.Second {
						t.Errorf("segment %d lasts %v, want 4s (cut at the keyframe at 4s)", i, d)
					}
				}
				if !firstSampleIsSync(t, st.SegmentPath(seg)) {
					t.Errorf("segment %d does not start with a keyframe", i)
				}
				p := ffprobe(t, st.SegmentPath(seg))
				codec, n, vdur, ok := p.stream("video")
				if !ok || codec != tc.probeVideo {
					t.Errorf("segment %d: video codec %q, want %q", i, codec, tc.probeVideo)
				}
				frames += n
				want := seg.End.Sub(seg.Start)
				if (vdur - want).Abs() > time.Second {
					t.Errorf("segment %d: ffprobe video duration %v, index %v", i, vdur, want)
				}
				if (p.duration() - want).Abs() > time.Second {
					t.Errorf("segment %d: ffprobe format duration %v, index %v", i, p.duration(), want)
				}
				acodec, an, _, aok := p.stream("audio")
				if tc.audio {
					if !aok || acodec != "aac" {
						t.Errorf("segment %d: audio stream %q present=%v", i, acodec, aok)
					}
					audioFrames += an
				} else if aok {
					t.Errorf("segment %d: unexpected audio stream", i)
				}
			}
			if frames != tc.clip.videoCount {
				t.Errorf("ffprobe counted %d video frames, wrote %d", frames, tc.clip.videoCount)
			}
			if tc.audio {
				// audio before the first keyframe is dropped; allow one frame per boundary
				if d := tc.clip.audioCount - audioFrames; d < 0 || d > 10+len(segs) {
					t.Errorf("ffprobe counted %d audio frames, wrote %d", audioFrames, tc.clip.audioCount)
				}
			}
		})
	}
}

// firstSampleIsSync reads the first fragment of a segment file.
func firstSampleIsSync(t testing.TB, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		t.Fatalf("parse parts of %s: %v", path, err)
	}
	for _, p := range parts {
		for _, tr := range p.Tracks {
			if tr.ID == 1 && len(tr.Samples) > 0 {
				return !tr.Samples[0].IsNonSyncSample && tr.BaseTime == 0
			}
		}
	}
	return false
}

func TestSegmentLengthAndParts(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	st := openTestStore(t, dir, func(o *Options) { o.Segment = 3 * time.Second; o.Part = 500 * time.Millisecond })
	w, err := st.Begin(Stream{Camera: "rec-a/door", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	samples := c.stream(testEpoch, 3, true) // 30 s
	// The index claims flushed footage while the segment is still open.
	for i, s := range samples[:len(samples)/2] {
		if err := w.Write(s); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	segs := allSegments(t, st, "rec-a/door")
	last := segs[len(segs)-1]
	if !last.Open {
		t.Errorf("newest segment not open while writing")
	}
	lastArrival := samples[len(samples)/2-1].Arrival
	if lag := lastArrival.Sub(last.End); lag < 0 || lag > time.Second {
		t.Errorf("open segment ends %v behind the last sample, want at most about one part", lag)
	}
	writeAll(t, w, samples[len(samples)/2:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs = checkConsistent(t, st, dir)
	if len(segs) != 10 {
		t.Fatalf("30 s in 3 s segments: got %d segments", len(segs))
	}
	for i, s := range segs[:len(segs)-1] {
		if d := s.End.Sub(s.Start); d != 3*time.Second {
			t.Errorf("segment %d lasts %v", i, d)
		}
	}
	// 3 s at 0.5 s parts is 6 fragments
	b, _ := os.ReadFile(st.SegmentPath(segs[0]))
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if len(parts) != 6 {
		t.Errorf("segment has %d fragments, want 6", len(parts))
	}
	if got := filepath.ToSlash(segs[0].File); got != "rec-a/door/2026-03-04/05-06-07.000-rec-a.mp4" {
		t.Errorf("file layout %q", got)
	}
}

// TestSegmentsOfOneStreamMeet: the segments one Writer cuts from an
// unbroken stream meet within a frame interval, however late a cut's
// keyframe arrives, so the export never reports a hole between them, and
// overlap by less than a frame, so it never drops the last frame before
// a cut; and their dates follow the arrivals when the camera's clock
// drifts from the server's.
func TestSegmentsOfOneStreamMeet(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	const frame = 40 * time.Millisecond // the clip's 25 fps
	cases := []struct {
		name string
		// arrival is when the sample at media time elapsed (from the
		// first) arrives; keyframe says whether it is one.
		arrival func(elapsed time.Duration, keyframe bool) time.Time
		// follow bounds how far a segment's date may be from its first
		// keyframe's arrival.
		follow time.Duration
	}{
		{"every keyframe arrives 300 ms late", func(el time.Duration, key bool) time.Time {
			if key && el > 0 {
				return testEpoch.Add(el + 300*time.Millisecond)
			}
			return testEpoch.Add(el)
		}, 300 * time.Millisecond},
		{"one keyframe in two arrives 70 ms late", func(el time.Duration, key bool) time.Time {
			if key && (el/time.Second)%2 == 1 {
				return testEpoch.Add(el + 70*time.Millisecond)
			}
			return testEpoch.Add(el)
		}, 70 * time.Millisecond},
		{"the camera's clock runs 0.5 % fast", func(el time.Duration, _ bool) time.Time {
			return testEpoch.Add(el - el/200)
		}, 2 * frame},
		{"the camera's clock runs 1 % slow", func(el time.Duration, _ bool) time.Time {
			return testEpoch.Add(el + el/100)
		}, 2 * frame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openTestStore(t, dir, func(o *Options) { o.Segment = 3 * time.Second })
			w, err := st.Begin(Stream{Camera: "rec-a/door", Home: "rec-a", Tracks: c.tracks(false)})
			if err != nil {
				t.Fatal(err)
			}
			samples := c.stream(testEpoch, 3, false) // 30 s
			first := samples[0].DTS
			for i := range samples {
				samples[i].Arrival = tc.arrival(ticksToDuration(samples[i].DTS-first, 90000), samples[i].Sync)
			}
			writeAll(t, w, samples)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			segs := checkConsistent(t, st, dir)
			if len(segs) != 10 {
				t.Fatalf("30 s in 3 s segments: got %d segments", len(segs))
			}
			var elapsed time.Duration // media time of the segment's first keyframe
			for i, seg := range segs {
				if i > 0 {
					if d := seg.Start.Sub(segs[i-1].End); d > frame || d < -frame/2-time.Millisecond {
						t.Errorf("segment %d starts %v after segment %d ends, want from half a frame before to a frame after (%v)", i, d, i-1, frame)
					}
				}
				arrived := tc.arrival(elapsed, true)
				if d := seg.Start.Sub(arrived); d > tc.follow || d < -tc.follow-time.Millisecond {
					t.Errorf("segment %d is dated %v from its first keyframe's arrival, want within %v", i, d, tc.follow)
				}
				elapsed += seg.End.Sub(seg.Start)
			}
		})
	}
}

func TestDropsUntilKeyframe(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	st := openTestStore(t, dir, func(o *Options) { o.Segment = time.Minute })
	w, _ := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(false)})
	samples := c.stream(testEpoch, 1, false)
	writeAll(t, w, samples[10:]) // starts mid-GOP: first keyframe is sample 25
	w.Close()
	segs := checkConsistent(t, st, dir)
	if len(segs) != 1 {
		t.Fatalf("got %d segments", len(segs))
	}
	if !segs[0].Start.Equal(samples[25].Arrival) {
		t.Errorf("segment starts %v, want first keyframe arrival %v", segs[0].Start, samples[25].Arrival)
	}
	_, n, _, _ := ffprobe(t, st.SegmentPath(segs[0])).stream("video")
	if n != len(samples)-25 {
		t.Errorf("%d frames, want %d", n, len(samples)-25)
	}
}

func TestClockJumpAndDiscontinuity(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	cases := []struct {
		name   string
		mangle func([]Sample)
	}{
		{"wall clock jumps forward", func(s []Sample) {
			for i := 100; i < len(s); i++ {
				s[i].Arrival = s[i].Arrival.Add(time.Hour)
			}
		}},
		{"wall clock jumps back", func(s []Sample) {
			for i := 100; i < len(s); i++ {
				s[i].Arrival = s[i].Arrival.Add(-10 * time.Second)
			}
		}},
		{"rtp jumps forward", func(s []Sample) {
			for i := 100; i < len(s); i++ {
				s[i].DTS += 90000 * 60
				if s[i].Track == 1 {
					s[i].DTS += 48000*60 - 90000*60
				}
				s[i].Arrival = s[i].Arrival.Add(time.Minute)
			}
		}},
		{"rtp goes backwards", func(s []Sample) {
			for i := 100; i < len(s); i++ {
				if s[i].Track == 0 {
					s[i].DTS -= 90000 * 30
				} else {
					s[i].DTS -= 48000 * 30
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openTestStore(t, dir, func(o *Options) { o.Segment = time.Minute })
			w, _ := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
			samples := c.stream(testEpoch, 1, true)
			tc.mangle(samples)
			writeAll(t, w, samples)
			w.Close()
			segs := checkConsistent(t, st, dir)
			if len(segs) != 2 {
				t.Fatalf("got %d segments, want 2 (cut at the jump): %+v", len(segs), segs)
			}
			// the second segment starts at the first keyframe after the jump
			var next Sample
			for _, s := range samples[100:] {
				if s.Track == 0 && s.Sync {
					next = s
					break
				}
			}
			want := next.Arrival.Truncate(time.Millisecond)
			if !segs[0].Start.Equal(want) && !segs[1].Start.Equal(want) {
				t.Errorf("no segment starts at the first keyframe after the jump (%v): %+v", want, segs)
			}
			for i, seg := range segs {
				d := seg.End.Sub(seg.Start)
				if d <= 0 || d > 10*time.Second {
					t.Errorf("segment %d has duration %v", i, d)
				}
				ffprobe(t, st.SegmentPath(seg))
			}
		})
	}
}

// budgetFS is the OS file layer whose files fail every write once the
// shared budget is spent.
type budgetFS struct {
	OSFS
	budget *int64
	mu     *sync.Mutex
}

func (fs budgetFS) Create(path string) (File, error) {
	f, err := fs.OSFS.Create(path)
	if err != nil {
		return nil, err
	}
	return failingFile{File: f, path: path, budget: fs.budget, mu: fs.mu}, nil
}

// failingFile fails every write once the shared budget is spent.
type failingFile struct {
	File
	path   string
	budget *int64
	mu     *sync.Mutex
}

func (f failingFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *f.budget < int64(len(p)) {
		return 0, &os.PathError{Op: "write", Path: f.path, Err: syscall.ENOSPC}
	}
	*f.budget -= int64(len(p))
	return f.File.Write(p)
}

func TestWriteErrorAlarmAndRecovery(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	var mu sync.Mutex
	var alarms []Alarm
	budget := int64(1 << 62)
	var bmu sync.Mutex
	st := openTestStore(t, dir, func(o *Options) {
		o.Segment = time.Minute
		o.OnAlarm = func(a Alarm) { mu.Lock(); alarms = append(alarms, a); mu.Unlock() }
		o.FS = budgetFS{budget: &budget, mu: &bmu}
	})
	w, _ := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
	samples := c.stream(testEpoch, 3, true)
	var errs int
	for i, s := range samples {
		if i == len(samples)/3 {
			bmu.Lock()
			budget = 0 // disk full
			bmu.Unlock()
		}
		if i == 2*len(samples)/3 {
			bmu.Lock()
			budget = 1 << 62 // space freed
			bmu.Unlock()
		}
		if err := w.Write(s); err != nil {
			errs++
			if !isDiskFull(err) {
				t.Errorf("error does not wrap ENOSPC: %v", err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if errs == 0 {
		t.Fatal("no write reported the full disk")
	}
	mu.Lock()
	kinds := fmt.Sprint(alarms)
	mu.Unlock()
	if !strings.Contains(kinds, AlarmDiskFull) || !strings.Contains(kinds, AlarmRecovered) {
		t.Errorf("alarms %s, want disk_full then recovered", kinds)
	}
	h := st.Health()
	if _, ok := h[AlarmDiskFull]; !ok {
		t.Errorf("health lacks disk_full: %v", h)
	}
	segs := checkConsistent(t, st, dir)
	if len(segs) != 2 {
		t.Fatalf("want the footage before and after the outage in 2 segments, got %d", len(segs))
	}
	gap := segs[1].Start.Sub(segs[0].End)
	if gap < 9*time.Second || gap > 12*time.Second {
		t.Errorf("gap %v, want about the 10 s outage", gap)
	}
	for _, seg := range segs {
		ffprobe(t, st.SegmentPath(seg))
	}
}

func TestBeginRejectsBadInput(t *testing.T) {
	st := openTestStore(t, t.TempDir(), nil)
	c := loadClip(t, "../testdata/h265.ts")
	for _, s := range []Stream{
		{Camera: "nohome", Tracks: c.tracks(false)},
		{Camera: "rec-a/x"},
		{Camera: "rec-a/x", Tracks: []Track{{}}},
	} {
		if _, err := st.Begin(s); err == nil {
			t.Errorf("Begin(%+v) accepted", s)
		}
	}
	w, err := st.Begin(Stream{Camera: "rec-a/x", Tracks: c.tracks(false)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Sample{Track: 7}); err == nil {
		t.Error("sample for track 7 accepted")
	}
	w.Close()
	if err := w.Write(Sample{}); err == nil {
		t.Error("write after close accepted")
	}
}

func TestCameraNameCannotEscape(t *testing.T) {
	dir := t.TempDir()
	for _, cam := range []string{"../../etc/passwd", "rec-a/../../x", "rec-a/.", "a/b/../..", ".hidden/x", "x/\x00y"} {
		rel, err := segmentRelPath(cam, "../evil", testEpoch)
		if err != nil {
			continue
		}
		if !filepath.IsLocal(rel) || strings.Count(filepath.ToSlash(rel), "/") != 3 {
			t.Errorf("camera %q maps to %q", cam, rel)
		}
		gotCam, by, start, err := parseRelPath(rel)
		if err != nil || gotCam != cam || by != "../evil" || !start.Equal(testEpoch) {
			t.Errorf("round trip of %q: %q %q %v %v", cam, gotCam, by, start, err)
		}
		if p := filepath.Join(dir, rel); !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("%q escapes", p)
		}
	}
}

// TestConcurrentCameras records several cameras at once while queries and
// retention run, as a server does; -race checks the sharing.
func TestConcurrentCameras(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	st := openTestStore(t, dir, func(o *Options) { o.Retention = 24 * time.Hour })
	const cams = 4
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cam := fmt.Sprintf("rec-b/cam%d", i)
			w, err := st.Begin(Stream{Camera: cam, Home: "rec-b", Tracks: c.tracks(true)})
			if err != nil {
				t.Error(err)
				return
			}
			for _, s := range c.stream(testEpoch, 1, true) {
				if err := w.Write(s); err != nil {
					t.Error(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	var qwg sync.WaitGroup
	qwg.Add(1)
	go func() {
		defer qwg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			for i := range cams {
				if _, err := st.Spans(fmt.Sprintf("rec-b/cam%d", i), testEpoch, testEpoch.Add(time.Minute)); err != nil {
					t.Error(err)
				}
			}
			if _, err := st.EnforceRetention(testEpoch.Add(time.Hour)); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(done)
	qwg.Wait()
	checkConsistent(t, st, dir)
	for i := range cams {
		spans, _ := st.Spans(fmt.Sprintf("rec-b/cam%d", i), testEpoch, testEpoch.Add(time.Minute))
		if len(spans) != 1 || spans[0].End.Sub(spans[0].Start) < 9900*time.Millisecond || spans[0].RecordedBy != "rec-a" {
			t.Errorf("camera %d spans %+v, want one 10 s span", i, spans)
		}
	}
}

// TestUnwritten: a short write resumes at the first byte not written,
// across buffer boundaries, and never changes the caller's buffers.
func TestUnwritten(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), nil, []byte("de"), []byte("fgh")}
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "abc|de|fgh"},
		{1, "bc|de|fgh"},
		{3, "de|fgh"},
		{4, "e|fgh"},
		{5, "fgh"},
		{7, "h"},
		{8, ""},
	} {
		var parts []string
		for _, b := range unwritten(bufs, tc.n) {
			if len(b) > 0 {
				parts = append(parts, string(b))
			}
		}
		if got := strings.Join(parts, "|"); got != tc.want {
			t.Errorf("unwritten after %d bytes = %q, want %q", tc.n, got, tc.want)
		}
	}
	if string(bufs[0]) != "abc" || string(bufs[2]) != "de" {
		t.Errorf("the caller's buffers changed: %q", bufs)
	}
}

// A sample handed over in pieces (as the recorder hands video over) is
// written exactly as the same sample in one buffer: the segment files of
// a clip written both ways are the same bytes, and ffprobe reads them.
func TestPiecesWriteTheSameFile(t *testing.T) {
	clip := loadClip(t, "../testdata/h264-aac.ts")
	write := func(dir string, split bool) (paths []string) {
		st := openTestStore(t, dir, nil)
		w, err := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: clip.tracks(true)})
		if err != nil {
			t.Fatal(err)
		}
		samples := clip.stream(testEpoch, 1, true)
		if split {
			for i := range samples {
				if p := samples[i].Payload; samples[i].Track == 0 && len(p) > 8 {
					a, b := len(p)/3, len(p)/2
					samples[i].Pieces = [][]byte{p[:a], p[a:a], p[a:b], p[b:]}
					samples[i].Payload = nil
				}
			}
		}
		writeAll(t, w, samples)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, seg := range checkConsistent(t, st, dir) {
			paths = append(paths, st.SegmentPath(seg))
		}
		return paths
	}
	whole := write(t.TempDir(), false)
	pieces := write(t.TempDir(), true)
	if len(whole) == 0 || len(pieces) != len(whole) {
		t.Fatalf("%d segments in pieces, %d whole", len(pieces), len(whole))
	}
	for i := range whole {
		a, err := os.ReadFile(whole[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(pieces[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("segment %d: %d bytes written from pieces differ from the %d written whole", i, len(b), len(a))
		}
		if codec, n, _, ok := ffprobe(t, pieces[i]).stream("video"); !ok || codec != "h264" || n == 0 {
			t.Errorf("segment %d from pieces: ffprobe video %q, %d frames", i, codec, n)
		}
	}
}
