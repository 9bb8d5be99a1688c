package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/internal/tsdemux"
	"github.com/buddyrec/buddyrec/storage"
)

var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const testCamera = "rec-a/lobby"

// clip is a test clip as storage samples, looped with continuous
// timestamps; Arrival is epoch + media time since the first video sample.
type clip struct {
	tracks  []storage.Track
	samples []storage.Sample // interleaved by time
}

func loadClip(t testing.TB, name string, loops int) *clip {
	t.Helper()
	path := filepath.Join("..", "testdata", name)
	tc, err := tsdemux.Load(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	video := storage.Track{Codec: tc.Video, TimeScale: 90000}
	var audio *storage.Track
	if tc.Audio != nil {
		audio = &storage.Track{Codec: tc.Audio, TimeScale: tc.AudioTimeScale}
	}
	var vs, as []storage.Sample
	for _, s := range tc.VideoSamples {
		vs = append(vs, storage.Sample{Track: 0, DTS: s.DTS, PTSOffset: s.PTSOffset, Sync: s.Sync, Payload: s.Payload})
	}
	for _, s := range tc.AudioSamples {
		as = append(as, storage.Sample{Track: 1, DTS: s.DTS, Sync: true, Payload: s.Payload})
	}
	c := &clip{tracks: []storage.Track{video}}
	if audio != nil {
		c.tracks = append(c.tracks, *audio)
	}
	first := vs[0].DTS
	span := vs[len(vs)-1].DTS - first + 90000/25
	ns := func(s storage.Sample) time.Duration {
		return ticksToDuration(s.DTS, int64(c.tracks[s.Track].TimeScale))
	}
	for l := range loops {
		var batch []storage.Sample
		for _, s := range vs {
			s.DTS += int64(l) * span
			batch = append(batch, s)
		}
		if audio != nil {
			for _, s := range as {
				s.DTS += int64(l) * span * int64(audio.TimeScale) / 90000
				batch = append(batch, s)
			}
		}
		sort.SliceStable(batch, func(i, j int) bool { return ns(batch[i]) < ns(batch[j]) })
		c.samples = append(c.samples, batch...)
	}
	for i := range c.samples {
		c.samples[i].Arrival = testEpoch.Add(ns(c.samples[i]) - ticksToDuration(first, 90000))
	}
	return c
}

// window returns the samples arriving in [from, to) after epoch, shifted
// by shift (time and DTS), for one recorder session.
func (c *clip) window(from, to, shift time.Duration) []storage.Sample {
	var out []storage.Sample
	for _, s := range c.samples {
		off := s.Arrival.Sub(testEpoch)
		if off < from || off >= to {
			continue
		}
		s.Arrival = s.Arrival.Add(shift)
		s.DTS += durationToTicks(shift, int64(c.tracks[s.Track].TimeScale))
		out = append(out, s)
	}
	return out
}

// videoFrames counts the video samples an export of [from, to) holds: from
// the last keyframe at or before from, up to to.
func videoFrames(samples []storage.Sample, from, to time.Time) int {
	start := time.Time{}
	for _, s := range samples {
		if s.Track == 0 && s.Sync && !s.Arrival.After(from) {
			start = s.Arrival
		}
	}
	n := 0
	for _, s := range samples {
		if s.Track == 0 && !s.Arrival.Before(start) && s.Arrival.Before(to) {
			n++
		}
	}
	return n
}

func openStore(t testing.TB, server string, part time.Duration) *storage.Store {
	t.Helper()
	st, err := storage.Open(storage.Options{Dir: t.TempDir(), Server: server, Segment: 2 * time.Second, Part: part})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// record writes samples as one recorder session of camera.
func record(t testing.TB, st *storage.Store, tracks []storage.Track, samples []storage.Sample) {
	t.Helper()
	w, err := st.Begin(storage.Stream{Camera: testCamera, Home: "rec-a", Tracks: tracks})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		if err := w.Write(s); err != nil {
			t.Fatalf("write sample %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed segments reach the index at the syncer's next round.
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
}

func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func exportURL(base, route string, from, to time.Time) string {
	return base + route + "?camera=" + testCamera + "&from=" + from.Format(time.RFC3339Nano) + "&to=" + to.Format(time.RFC3339Nano)
}

// download GETs an export into a file and returns its path and gaps.
func download(t testing.TB, url string) (string, []Gap) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "video/mp4" {
		t.Errorf("Content-Type %q", ct)
	}
	var gaps []Gap
	if err := json.Unmarshal([]byte(resp.Header.Get(GapsHeader)), &gaps); err != nil {
		t.Fatalf("gaps header %q: %v", resp.Header.Get(GapsHeader), err)
	}
	if _, declared := resp.Trailer[DigestTrailer]; !declared {
		t.Errorf("trailers declared %v, want %s", resp.Trailer, DigestTrailer)
	}
	path := filepath.Join(t.TempDir(), "export.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if e := resp.Trailer.Get(ErrorTrailer); e != "" {
		t.Fatalf("export stopped early: %s", e)
	}
	// every export carries the SHA-256 of its body as a trailer
	f.Close()
	if got, want := resp.Trailer.Get(DigestTrailer), sha256Hex(t, path); got != want {
		t.Errorf("%s trailer = %q, want sha256 of the body %q", DigestTrailer, got, want)
	}
	return path, gaps
}

// probe is what ffprobe tells about a file, having decoded all of it.
type probe struct {
	videoCodec, audioCodec string
	videoFrames            int
	duration               time.Duration
	width, height          int
}

func ffprobe(t testing.TB, path string) probe {
	t.Helper()
	bin := testutil.NeedTool(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("ffprobe %s: %v %s", path, err, ee.Stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			CodecName    string `json:"codec_name"`
			NbReadFrames string `json:"nb_read_frames"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	var p probe
	for _, s := range r.Streams {
		switch s.CodecType {
		case "video":
			p.videoCodec = s.CodecName
			p.videoFrames, _ = strconv.Atoi(s.NbReadFrames)
			p.width, p.height = s.Width, s.Height
		case "audio":
			p.audioCodec = s.CodecName
		}
	}
	f, _ := strconv.ParseFloat(r.Format.Duration, 64)
	p.duration = time.Duration(f * float64(time.Second))
	return p
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
