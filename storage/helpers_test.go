package storage

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/internal/tsdemux"
)

// clip is a test clip converted to storage samples.
type clip struct {
	video      Track
	audio      *Track
	vsamples   []Sample // DTS in 90 kHz
	asamples   []Sample // DTS in 48 kHz
	videoCount int
	audioCount int
}

var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// loadClip reads an MPEG-TS clip (see readTS) and converts
// its access units to samples the way the recorder does.
func loadClip(t testing.TB, path string) *clip {
	t.Helper()
	tc, err := tsdemux.Load(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	c := &clip{video: Track{Codec: tc.Video, TimeScale: 90000}}
	if tc.Audio != nil {
		c.audio = &Track{Codec: tc.Audio, TimeScale: tc.AudioTimeScale}
	}
	for _, s := range tc.VideoSamples {
		c.vsamples = append(c.vsamples, Sample{Track: 0, DTS: s.DTS, PTSOffset: s.PTSOffset, Sync: s.Sync, Payload: s.Payload})
	}
	for _, s := range tc.AudioSamples {
		c.asamples = append(c.asamples, Sample{Track: 1, DTS: s.DTS, Sync: true, Payload: s.Payload})
	}
	c.videoCount = len(c.vsamples)
	c.audioCount = len(c.asamples)
	return c
}

// stream interleaves video and audio by decode time and stamps arrivals
// from the video timeline starting at start, repeated loops times with
// continuous timestamps.
func (c *clip) stream(start time.Time, loops int, withAudio bool) []Sample {
	first := c.vsamples[0].DTS
	vspan := c.vsamples[len(c.vsamples)-1].DTS - first + 90000/25
	var out []Sample
	for l := range loops {
		var batch []Sample
		for _, s := range c.vsamples {
			s.DTS += int64(l) * vspan
			batch = append(batch, s)
		}
		if withAudio && c.audio != nil {
			ats := int64(c.audio.TimeScale)
			for _, s := range c.asamples {
				s.DTS += int64(l) * vspan * ats / 90000
				batch = append(batch, s)
			}
		}
		sort.SliceStable(batch, func(i, j int) bool { return c.ns(batch[i]) < c.ns(batch[j]) })
		out = append(out, batch...)
	}
	for i := range out {
		out[i].Arrival = start.Add(c.ns(out[i]) - ticksToDuration(first, 90000))
	}
	return out
}

func (c *clip) ns(s Sample) time.Duration {
	if s.Track == 0 {
		return ticksToDuration(s.DTS, 90000)
	}
	return ticksToDuration(s.DTS, int64(c.audio.TimeScale))
}

func (c *clip) tracks(withAudio bool) []Track {
	if withAudio && c.audio != nil {
		return []Track{c.video, *c.audio}
	}
	return []Track{c.video}
}

// probe is the part of ffprobe's answer the tests check.
type probe struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		NbReadFrames string `json:"nb_read_frames"`
		Duration     string `json:"duration"`
		SampleRate   string `json:"sample_rate"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func needFFprobe(t testing.TB) string {
	t.Helper()
	return testutil.NeedTool(t, "ffprobe")
}

// ffprobe plays the whole file (counting frames) and fails the test on
// any decode error.
func ffprobe(t testing.TB, path string) probe {
	t.Helper()
	bin := needFFprobe(t)
	cmd := exec.Command(bin, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path)
	var stderr []byte
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("ffprobe %s: %v %s", path, err, stderr)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s output: %v", path, err)
	}
	return p
}

func (p probe) stream(kind string) (codec string, frames int, dur time.Duration, ok bool) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			n, _ := strconv.Atoi(s.NbReadFrames)
			f, _ := strconv.ParseFloat(s.Duration, 64)
			return s.CodecName, n, time.Duration(f * float64(time.Second)), true
		}
	}
	return "", 0, 0, false
}

func (p probe) duration() time.Duration {
	f, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return time.Duration(f * float64(time.Second))
}

func openTestStore(t testing.TB, dir string, mod func(*Options)) *Store {
	t.Helper()
	opts := Options{Dir: dir, Server: "rec-a", Segment: 4 * time.Second, Part: time.Second}
	if mod != nil {
		mod(&opts)
	}
	st, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func writeAll(t testing.TB, w *Writer, samples []Sample) {
	t.Helper()
	for i, s := range samples {
		if err := w.Write(s); err != nil {
			t.Fatalf("write sample %d: %v", i, err)
		}
	}
}

func allSegments(t testing.TB, st *Store, camera string) []Segment {
	t.Helper()
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	segs, err := st.Segments(camera, time.Unix(0, 0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// segmentFiles lists every .mp4 under dir, relative to it.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Ext(p) == ".mp4" {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// checkConsistent asserts that every index entry of camera has its file
// and every file on disk is indexed and closed.
func checkConsistent(t testing.TB, st *Store, dir string) []Segment {
	t.Helper()
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	cams, err := st.Cameras()
	if err != nil {
		t.Fatal(err)
	}
	var segs []Segment
	indexed := map[string]bool{}
	for _, cam := range cams {
		for _, s := range allSegments(t, st, cam) {
			if s.Open {
				t.Errorf("segment %s still open", s.File)
			}
			if _, err := os.Stat(st.SegmentPath(s)); err != nil {
				t.Errorf("index entry without file: %v", err)
			}
			indexed[s.File] = true
			segs = append(segs, s)
		}
	}
	for _, f := range segmentFiles(t, dir) {
		if !indexed[f] {
			t.Errorf("file %s not indexed", f)
		}
	}
	return segs
}
