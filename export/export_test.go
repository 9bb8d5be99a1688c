package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

const gop = time.Second // the committed clip has a keyframe every second

func near(a, b, tol time.Duration) bool {
	d := a - b
	return d <= tol && d >= -tol
}

// TestExportAcrossSegments exports a range spanning three segment
// boundaries, starting between keyframes and inside a part (parts of 700ms
// are not aligned with the 1s GOP), and checks that ffprobe decodes exactly
// the frames from the keyframe before from up to to.
func TestExportAcrossSegments(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	st := openStore(t, "rec-a", 700*time.Millisecond)
	samples := c.window(0, 10*time.Second, 0)
	record(t, st, c.tracks, samples)
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))

	from, to := testEpoch.Add(1500*time.Millisecond), testEpoch.Add(6500*time.Millisecond)
	path, gaps := download(t, exportURL(srv.URL, RouteExport, from, to))
	if len(gaps) != 0 {
		t.Errorf("gaps = %v, want none", gaps)
	}
	p := ffprobe(t, path)
	if p.videoCodec != "h264" || p.audioCodec != "aac" || p.width != 1280 || p.height != 720 {
		t.Errorf("streams = %+v, want h264 1280x720 + aac", p)
	}
	if want := videoFrames(samples, from, to); p.videoFrames != want {
		t.Errorf("video frames = %d, want %d", p.videoFrames, want)
	}
	if want := to.Sub(from); !near(p.duration, want, gop) {
		t.Errorf("duration = %v, want %v ± %v", p.duration, want, gop)
	}
}

// TestExportAcrossLateKeyframes: a recorder session whose cuts' keyframes
// arrive 70 ms late, then on time again (a loaded server), exports every
// frame once, with no gap. Dated by their arrivals alone, the segment
// after a late keyframe overlapped the next by 70 ms, and the export,
// which stops a piece where the next one starts, dropped its last frame.
func TestExportAcrossLateKeyframes(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	st := openStore(t, "rec-a", 500*time.Millisecond) // 2 s segments
	samples := c.window(0, 10*time.Second, 0)
	late := slices.Clone(samples)
	for i, s := range late {
		if k := s.Arrival.Sub(testEpoch) / time.Second; s.Track == 0 && s.Sync && (k/2)%2 == 1 {
			late[i].Arrival = s.Arrival.Add(70 * time.Millisecond) // the cuts at 2 s and 6 s
		}
	}
	record(t, st, c.tracks, late)
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))

	from, to := testEpoch.Add(1500*time.Millisecond), testEpoch.Add(11*time.Second)
	path, gaps := download(t, exportURL(srv.URL, RouteExport, from, to))
	if len(gaps) != 1 || gaps[0].Start.Before(testEpoch.Add(9900*time.Millisecond)) {
		t.Errorf("gaps = %v, want only the one after the footage ends (10 s)", gaps)
	}
	if p, want := ffprobe(t, path), videoFrames(samples, from, to); p.videoFrames != want {
		t.Errorf("video frames = %d, want %d: every frame from the keyframe at 1 s on, once", p.videoFrames, want)
	}
}

// TestExportReportsGap records two sessions with four seconds between
// them; the export holds both, keeps the hole in its timeline (real time),
// and says where it was, as does the plan.
func TestExportReportsGap(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 2)
	st := openStore(t, "rec-a", 500*time.Millisecond)
	first := c.window(0, 4*time.Second, 0)
	second := c.window(8*time.Second, 12*time.Second, 0)
	record(t, st, c.tracks, first)
	record(t, st, c.tracks, second)
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))

	from, to := testEpoch.Add(time.Second), testEpoch.Add(11*time.Second)
	path, gaps := download(t, exportURL(srv.URL, RouteExport, from, to))
	if len(gaps) != 1 || !near(gaps[0].Start.Sub(testEpoch), 4*time.Second, 100*time.Millisecond) ||
		!gaps[0].End.Equal(testEpoch.Add(8*time.Second)) {
		t.Fatalf("gaps = %+v, want one from ~4s to 8s", gaps)
	}
	p := ffprobe(t, path)
	want := videoFrames(first, from, to) + videoFrames(second, from, to)
	if p.videoFrames != want {
		t.Errorf("video frames = %d, want %d", p.videoFrames, want)
	}
	if !near(p.duration, to.Sub(from), gop) {
		t.Errorf("duration = %v, want %v ± %v (the gap kept)", p.duration, to.Sub(from), gop)
	}

	resp, err := http.Get(exportURL(srv.URL, RoutePlan, from, to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var plan Plan
	if err := json.NewDecoder(resp.Body).Decode(&plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Gaps) != 1 || !plan.Gaps[0].End.Equal(gaps[0].End) || len(plan.Pieces) < 4 {
		t.Errorf("plan = %+v, want the same gap and the segments on both sides", plan)
	}
}

// TestExportAcrossFailover splits a camera's footage between its home and
// the buddy that recorded it during an outage; one request to the home
// returns all of it, fetched from the buddy with the peer header.
func TestExportAcrossFailover(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	home := openStore(t, "rec-a", 500*time.Millisecond)
	buddy := openStore(t, "rec-b", 500*time.Millisecond)
	before := c.window(0, 3*time.Second, 0)
	during := c.window(3*time.Second, 7*time.Second, 0)
	after := c.window(7*time.Second, 10*time.Second, 0)
	record(t, home, c.tracks, before)
	record(t, buddy, c.tracks, during)
	record(t, home, c.tracks, after)

	const secret = "Bearer s3cret"
	buddyH := NewHandler(Options{Store: buddy, Self: "rec-b"})
	buddySrv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != secret {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		buddyH.ServeHTTP(w, r)
	}))
	homeSrv := serve(t, NewHandler(Options{
		Store: home, Self: "rec-a",
		Peers: func() []Peer {
			return []Peer{{Name: "rec-a", HTTP: "127.0.0.1:1"}, {Name: "rec-b", HTTP: buddySrv.URL}}
		},
		PeerHeader: http.Header{"Authorization": {secret}},
	}))

	from, to := testEpoch.Add(500*time.Millisecond), testEpoch.Add(9500*time.Millisecond)
	path, gaps := download(t, exportURL(homeSrv.URL, RouteExport, from, to))
	if len(gaps) != 0 {
		t.Errorf("gaps = %+v, want none", gaps)
	}
	p := ffprobe(t, path)
	want := videoFrames(before, from, to) + videoFrames(during, from, to) + videoFrames(after, from, to)
	if p.videoFrames != want {
		t.Errorf("video frames = %d, want %d (home + buddy)", p.videoFrames, want)
	}
	if !near(p.duration, to.Sub(from), gop) {
		t.Errorf("duration = %v, want %v ± %v", p.duration, to.Sub(from), gop)
	}
}

// TestExportStopsAtCodecChange: a later piece with other codec parameters
// cannot share the first piece's init, so the export ends there and says
// why.
func TestExportStopsAtCodecChange(t *testing.T) {
	h264c := loadClip(t, "h264-aac.ts", 1)
	h265c := loadClip(t, "h265.ts", 1)
	st := openStore(t, "rec-a", 500*time.Millisecond)
	first := h264c.window(0, 4*time.Second, 0)
	record(t, st, h264c.tracks, first)
	record(t, st, h265c.tracks, h265c.window(0, 4*time.Second, 4*time.Second))
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))

	from, to := testEpoch, testEpoch.Add(8*time.Second)
	path, gaps := download(t, exportURL(srv.URL, RouteExport, from, to))
	if len(gaps) != 1 || gaps[0].Reason == "" || !gaps[0].End.Equal(to) ||
		!near(gaps[0].Start.Sub(testEpoch), 4*time.Second, 100*time.Millisecond) {
		t.Fatalf("gaps = %+v, want one from ~4s to the end with a reason", gaps)
	}
	p := ffprobe(t, path)
	if p.videoCodec != "h264" || p.videoFrames != videoFrames(first, from, to) {
		t.Errorf("got %s with %d frames, want h264 with %d", p.videoCodec, p.videoFrames, videoFrames(first, from, to))
	}
}

func TestExportBadRequests(t *testing.T) {
	st := openStore(t, "rec-a", time.Second)
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))
	from, to := testEpoch, testEpoch.Add(time.Minute)
	for _, tc := range []struct {
		name, url string
		code      int
	}{
		{"no camera", srv.URL + RouteExport + "?from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339), 400},
		{"bad from", srv.URL + RouteExport + "?camera=" + testCamera + "&from=yesterday&to=" + to.Format(time.RFC3339), 400},
		{"reversed", exportURL(srv.URL, RouteExport, to, from), 400},
		{"no footage", exportURL(srv.URL, RouteExport, from, to), 404},
		{"plan of nothing", exportURL(srv.URL, RoutePlan, from, to), 200},
		{"segments of nothing", exportURL(srv.URL, RouteSegments, from, to), 200},
		{"file not indexed", srv.URL + RouteFile + "?camera=" + testCamera + "&start=123", 404},
		{"file bad start", srv.URL + RouteFile + "?camera=" + testCamera + "&start=x", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
		})
	}
}

// TestSegmentFileRange checks the peer file route honours Range, which
// peers rely on to read a segment's init and to resume.
func TestSegmentFileRange(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	st := openStore(t, "rec-a", time.Second)
	record(t, st, c.tracks, c.window(0, 3*time.Second, 0))
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))
	segs, err := st.Segments(testCamera, testEpoch, testEpoch.Add(time.Minute))
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+RouteFile+"?camera="+testCamera+"&start="+
		strconv.FormatInt(segs[0].Start.UnixNano(), 10), nil)
	req.Header.Set("Range", "bytes=4-7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 16)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusPartialContent || string(buf[:n]) != "ftyp" {
		t.Errorf("got %s %q, want 206 \"ftyp\"", resp.Status, buf[:n])
	}
}

// TestSegmentFileDigest: asked for it, a closed segment's download carries
// the RFC 9530 Repr-Digest of the whole file, also on a range request, and
// it matches the bytes on disk.
func TestSegmentFileDigest(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	st := openStore(t, "rec-a", time.Second)
	record(t, st, c.tracks, c.window(0, 3*time.Second, 0))
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))
	segs, err := st.Segments(testCamera, testEpoch, testEpoch.Add(time.Minute))
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	disk, err := os.ReadFile(st.SegmentPath(segs[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(disk)
	url := srv.URL + RouteFile + "?camera=" + testCamera + "&start=" + strconv.FormatInt(segs[0].Start.UnixNano(), 10)
	for _, tc := range []struct {
		name, want, rng string
		digest          bool
	}{
		{"whole file", "sha-256=10", "", true},
		{"range", "sha-256=3, sha-512=1", "bytes=100-", true},
		{"not asked", "", "", false},
		{"refused", "sha-256=0", "", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if tc.want != "" {
			req.Header.Set(WantReprDigestHeader, tc.want)
		}
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get(ReprDigestHeader)
		if !tc.digest {
			if got != "" {
				t.Errorf("%s: unasked digest %q", tc.name, got)
			}
			continue
		}
		sum, err := ParseReprDigest(got)
		if err != nil || !bytes.Equal(sum, want[:]) {
			t.Errorf("%s: Repr-Digest %q (%v), want the file's sha-256 %x", tc.name, got, err, want)
		}
	}
}
