package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	gomp4 "github.com/abema/go-mp4"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

// session returns the samples of one recorder session of the clip arriving
// in [from, to) after the epoch, as another server would stamp them: its
// clock off by skew, and its RTP clock starting elsewhere (dtsOrigin
// seconds later), as a second RTSP session to the same camera does.
func (c *clip) session(from, to, skew time.Duration, dtsOrigin time.Duration) []storage.Sample {
	out := c.window(from, to, 0)
	for i := range out {
		out[i].Arrival = out[i].Arrival.Add(skew)
		out[i].DTS += durationToTicks(dtsOrigin, int64(c.tracks[out[i].Track].TimeScale))
	}
	return out
}

// failoverSite records, for camera rec-a/lobby, what a failover and a
// failback leave on two servers: the home records [0, 3s), dies; its buddy
// (its clock skew off, its own RTSP session) records from its first
// keyframe after 4.3 s; at failback the home records again from its first
// keyframe after 7.4 s while the buddy goes on until 8.6 s (make before
// break: 0.6 s recorded twice); the home goes on to 14 s. It returns the
// home's export handler's URL.
func failoverSite(t *testing.T, c *clip, skew time.Duration) string {
	t.Helper()
	home := openStore(t, "rec-a", 500*time.Millisecond)
	buddy := openStore(t, "rec-b", 500*time.Millisecond)
	record(t, home, c.tracks, c.session(0, 3*time.Second, 0, 0))
	record(t, buddy, c.tracks, c.session(4300*time.Millisecond, 8600*time.Millisecond, skew, 1000*time.Second))
	record(t, home, c.tracks, c.session(7400*time.Millisecond, 14*time.Second, 0, 2000*time.Second))
	buddySrv := serve(t, NewHandler(Options{Store: buddy, Self: "rec-b"}))
	homeSrv := serve(t, NewHandler(Options{Store: home, Self: "rec-a",
		Peers: func() []Peer { return []Peer{{Name: "rec-b", HTTP: buddySrv.URL}} }}))
	return homeSrv.URL
}

// ffmpegErrors decodes the whole file and returns what ffmpeg says at
// level error: nothing for a clean file.
func ffmpegErrors(t *testing.T, path string) string {
	t.Helper()
	bin := testutil.NeedTool(t, "ffmpeg")
	out, err := exec.Command(bin, "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return string(out) + err.Error()
	}
	return strings.TrimSpace(string(out))
}

// TestExportEvidenceAcrossFailoverAndFailback exports a range across a
// failover and a failback from the home: ffmpeg decodes it without a
// single error, its duration is the wall-clock range (the 2 s failover
// hole stays in the timeline), the hole is reported, the overlap of the
// failback is played once, and the file maps to real time (mvhd creation
// time, one prft per fragment). The buddy's clock is ahead or behind the
// home's: either way the join at failback plays the keyframe once (with
// H.265's open GOPs a keyframe played twice is a duplicate POC).
func TestExportEvidenceAcrossFailoverAndFailback(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration
	}{{"h264-aac.ts", 12 * time.Millisecond}, {"h264-aac.ts", -12 * time.Millisecond}, {"h265.ts", 12 * time.Millisecond}, {"h265.ts", -12 * time.Millisecond}} {
		name := tc.name
		t.Run(fmt.Sprintf("%s/skew%v", name, tc.skew), func(t *testing.T) {
			c := loadClip(t, name, 2)
			base := failoverSite(t, c, tc.skew)
			from, to := testEpoch.Add(500*time.Millisecond), testEpoch.Add(13500*time.Millisecond)
			path, gaps := download(t, exportURL(base, RouteExport, from, to))

			if len(gaps) != 1 || !near(gaps[0].Start.Sub(testEpoch), 3*time.Second, 100*time.Millisecond) ||
				!near(gaps[0].End.Sub(testEpoch), 5*time.Second, 100*time.Millisecond) {
				t.Errorf("gaps = %+v, want one from ~3 s to ~5 s", gaps)
			}
			if msg := ffmpegErrors(t, path); msg != "" {
				t.Errorf("ffmpeg -v error says:\n%s", msg)
			}
			p := ffprobe(t, path)
			if want := to.Sub(from); !near(p.duration, want, gop) {
				t.Errorf("duration = %v, want the wall-clock range %v ± %v", p.duration, want, gop)
			}
			// every frame once: the home's first session from the keyframe
			// before from, the buddy's from its first keyframe (5 s), the
			// home's second session from its first keyframe (8 s) up to to
			frames := 0
			for _, s := range c.samples {
				off := s.Arrival.Sub(testEpoch)
				if s.Track == 0 && (off < 3*time.Second || off >= 5*time.Second && off < 13500*time.Millisecond) {
					frames++
				}
			}
			if p.videoFrames != frames {
				t.Errorf("video frames = %d, want %d (each frame once)", p.videoFrames, frames)
			}
			checkRealTime(t, readFile(t, path), testEpoch, 50*time.Millisecond)
			checkMonotonic(t, readFile(t, path))

			// the plan says which server holds what: the buddy's piece is
			// cut at the home's first keyframe after failback (8 s)
			var plan Plan
			getJSON(t, exportURL(base, RoutePlan, from, to), &plan)
			type pc struct {
				server     string
				start, end time.Duration
			}
			var got []pc
			for _, p := range plan.Pieces { // one run per server
				x := pc{p.Server, p.Start.Sub(testEpoch).Round(100 * time.Millisecond), p.End.Sub(testEpoch).Round(100 * time.Millisecond)}
				if n := len(got); n > 0 && got[n-1].server == x.server && got[n-1].end == x.start {
					got[n-1].end = x.end
					continue
				}
				got = append(got, x)
			}
			want := []pc{{"rec-a", 0, 3 * time.Second}, {"rec-b", 5 * time.Second, 8 * time.Second}, {"rec-a", 8 * time.Second, 13500 * time.Millisecond}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("plan pieces = %v, want %v", got, want)
			}
		})
	}
}

// TestExportReportsShortHole: a reconnect that loses half a second is a
// hole of more than two frame intervals, so it is reported.
func TestExportReportsShortHole(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	st := openStore(t, "rec-a", 500*time.Millisecond)
	record(t, st, c.tracks, c.session(0, 2500*time.Millisecond, 0, 0))
	record(t, st, c.tracks, c.session(2800*time.Millisecond, 6*time.Second, 0, 100*time.Second))
	srv := serve(t, NewHandler(Options{Store: st, Self: "rec-a"}))
	from, to := testEpoch, testEpoch.Add(5*time.Second)
	path, gaps := download(t, exportURL(srv.URL, RouteExport, from, to))
	if len(gaps) != 1 || !near(gaps[0].Start.Sub(testEpoch), 2500*time.Millisecond, 50*time.Millisecond) ||
		!near(gaps[0].End.Sub(testEpoch), 3*time.Second, 50*time.Millisecond) {
		t.Errorf("gaps = %+v, want one from ~2.5 s to 3 s", gaps)
	}
	if p := ffprobe(t, path); !near(p.duration, 5*time.Second, 100*time.Millisecond) {
		t.Errorf("duration = %v, want 5 s (the hole kept)", p.duration)
	}
}

// prftBox is the ProducerReferenceTimeBox (ISO/IEC 14496-12 8.16.5), which
// go-mp4 does not know; registered for the tests that parse exports.
type prftBox struct {
	gomp4.FullBox    `mp4:"0,extend"`
	ReferenceTrackID uint32 `mp4:"1,size=32"`
	NTPTimestamp     uint64 `mp4:"2,size=64"`
	MediaTimeV0      uint32 `mp4:"3,size=32,ver=0"`
	MediaTimeV1      uint64 `mp4:"4,size=64,ver=1"`
}

func boxTypePrft() gomp4.BoxType { return gomp4.StrToBoxType("prft") }

func (*prftBox) GetType() gomp4.BoxType { return boxTypePrft() }

func init() { gomp4.AddBoxDef(&prftBox{}, 0, 1) }

func ntpTime(v uint64) time.Time {
	sec, frac := v>>32, v&0xFFFFFFFF
	return ntpEpoch.Add(time.Duration(sec)*time.Second + time.Duration(frac*uint64(time.Second)>>32))
}

// checkRealTime parses an export with go-mp4: the mvhd creation time is
// the second of start (the wall clock of the first frame), and every moof
// is preceded by a prft whose NTP time is the wall clock of its media time
// on the export's timeline, within tol.
func checkRealTime(t *testing.T, file []byte, start time.Time, tol time.Duration) {
	t.Helper()
	r := bytes.NewReader(file)
	boxes, err := gomp4.ExtractBoxWithPayload(r, nil, gomp4.BoxPath{gomp4.BoxTypeMoov(), gomp4.BoxTypeMvhd()})
	if err != nil || len(boxes) != 1 {
		t.Fatalf("mvhd: %v (%d found)", err, len(boxes))
	}
	mvhd := boxes[0].Payload.(*gomp4.Mvhd)
	created := mp4Epoch.Add(time.Duration(mvhd.CreationTimeV0) * time.Second)
	if mvhd.GetVersion() == 1 {
		created = mp4Epoch.Add(time.Duration(mvhd.CreationTimeV1) * time.Second)
	}
	if want := start.Truncate(time.Second); !created.Equal(want) {
		t.Errorf("mvhd creation time = %v, want %v", created, want)
	}
	scales := map[uint32]uint32{}
	mdhds, err := gomp4.ExtractBoxesWithPayload(r, nil, []gomp4.BoxPath{
		{gomp4.BoxTypeMoov(), gomp4.BoxTypeTrak(), gomp4.BoxTypeTkhd()},
		{gomp4.BoxTypeMoov(), gomp4.BoxTypeTrak(), gomp4.BoxTypeMdia(), gomp4.BoxTypeMdhd()}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, b := range mdhds {
		switch p := b.Payload.(type) {
		case *gomp4.Tkhd:
			ids = append(ids, p.TrackID)
		case *gomp4.Mdhd:
			scales[ids[len(ids)-1]] = p.Timescale
		}
	}
	top, err := gomp4.ReadBoxStructure(r, func(h *gomp4.ReadHandle) (any, error) {
		if h.BoxInfo.Type == boxTypePrft() {
			box, _, err := h.ReadPayload()
			return box, err
		}
		return h.BoxInfo.Type, nil
	})
	if err != nil {
		t.Fatalf("read boxes: %v", err)
	}
	moofs, prfts := 0, 0
	var prev *prftBox
	for _, v := range top {
		switch x := v.(type) {
		case *prftBox:
			prev = x
		case gomp4.BoxType:
			if x != gomp4.BoxTypeMoof() {
				if x != gomp4.BoxTypeMdat() {
					prev = nil
				}
				continue
			}
			moofs++
			if prev == nil {
				t.Errorf("moof %d has no prft before it", moofs)
				continue
			}
			prfts++
			ts := scales[prev.ReferenceTrackID]
			if ts == 0 {
				t.Fatalf("prft names track %d, not in the file", prev.ReferenceTrackID)
			}
			media := prev.MediaTimeV1
			if prev.GetVersion() == 0 {
				media = uint64(prev.MediaTimeV0)
			}
			origin := ntpTime(prev.NTPTimestamp).Add(-ticksToDuration(int64(media), int64(ts)))
			if d := origin.Sub(start); d > tol || d < -tol {
				t.Errorf("moof %d: prft maps media time 0 to %v, want %v ± %v", moofs, origin, start, tol)
			}
			prev = nil
		}
	}
	if moofs == 0 || prfts != moofs {
		t.Errorf("%d moofs, %d with a prft", moofs, prfts)
	}
}

// sha256Hex is the hex SHA-256 of the file at path.
func sha256Hex(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestExportPartitionOverlap: during a partition both the home and its
// buddy recorded the camera for five seconds. The export plays the home's
// copy up to the buddy's last keyframe before the home's footage ends, then
// the buddy's: no moment twice, no hole, decode times only growing.
func TestExportPartitionOverlap(t *testing.T) {
	for _, name := range []string{"h264-aac.ts", "h265.ts"} {
		t.Run(name, func(t *testing.T) {
			c := loadClip(t, name, 2)
			home := openStore(t, "rec-a", 500*time.Millisecond)
			buddy := openStore(t, "rec-b", 500*time.Millisecond)
			record(t, home, c.tracks, c.session(0, 8200*time.Millisecond, 0, 0))
			record(t, buddy, c.tracks, c.session(2700*time.Millisecond, 14*time.Second, -7*time.Millisecond, 500*time.Second))
			buddySrv := serve(t, NewHandler(Options{Store: buddy, Self: "rec-b"}))
			homeSrv := serve(t, NewHandler(Options{Store: home, Self: "rec-a",
				Peers: func() []Peer { return []Peer{{Name: "rec-b", HTTP: buddySrv.URL}} }}))
			from, to := testEpoch.Add(500*time.Millisecond), testEpoch.Add(12500*time.Millisecond)
			path, gaps := download(t, exportURL(homeSrv.URL, RouteExport, from, to))
			if len(gaps) != 0 {
				t.Errorf("gaps = %+v, want none", gaps)
			}
			if msg := ffmpegErrors(t, path); msg != "" {
				t.Errorf("ffmpeg -v error says:\n%s", msg)
			}
			p := ffprobe(t, path)
			if !near(p.duration, to.Sub(from), gop) {
				t.Errorf("duration = %v, want %v ± %v", p.duration, to.Sub(from), gop)
			}
			frames := 0
			for _, s := range c.samples {
				if off := s.Arrival.Sub(testEpoch); s.Track == 0 && off < 12500*time.Millisecond {
					frames++
				}
			}
			if p.videoFrames != frames {
				t.Errorf("video frames = %d, want %d (each moment once)", p.videoFrames, frames)
			}
			checkMonotonic(t, readFile(t, path))
		})
	}
}

// checkMonotonic walks an export's fragments: per track, each fragment's
// decode time is at or after the end of the previous one (equal where the
// timeline continues, later across a gap), never before.
func checkMonotonic(t *testing.T, file []byte) {
	t.Helper()
	r := bytesReader(file)
	_, off, err := readInit(r)
	if err != nil {
		t.Fatal(err)
	}
	end := map[uint32]uint64{}
	var f fragment
	for off < int64(len(file)) {
		size, typ, err := readBoxHeader(r, off)
		if err != nil {
			t.Fatal(err)
		}
		if typ != "moof" {
			off += size
			continue
		}
		next, err := readFragment(r, off, int64(len(file)), &f, true)
		if err != nil {
			t.Fatalf("fragment at %d: %v", off, err)
		}
		for _, tr := range f.trafs {
			if len(tr.samples) == 0 {
				continue
			}
			if e, seen := end[tr.id]; seen && tr.samples[0].dts < e {
				t.Errorf("track %d: fragment at %d starts at %d, before the previous one ends (%d)", tr.id, off, tr.samples[0].dts, e)
			}
			last := tr.samples[len(tr.samples)-1]
			end[tr.id] = last.dts + uint64(last.dur)
		}
		off = next
	}
}
