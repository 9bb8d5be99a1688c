package recorder

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

// TestTimestampJumps records cameras whose clocks jump, as observed in the
// field: one steps back 20 s every 8 s, one jumps 10 h forward every 10 s
// with a burst of duplicated frames. Into real storage: the index must
// cover the wall-clock time recorded (± 1 GOP, 1 s in the clip), every
// file must decode without an error, and the number of files stays
// bounded (a cut per discontinuity, rate-limited, never a file per frame).
func TestTimestampJumps(t *testing.T) {
	if testing.Short() {
		t.Skip("records for 30 s")
	}
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	srv := startCams(t, 3, "h264", map[int]camsim.Fault{
		1: {JumpEvery: 8 * time.Second, JumpBy: -20 * time.Second},
		2: {JumpEvery: 10 * time.Second, JumpBy: 10 * time.Hour, Duplicates: 25},
		3: {JumpEvery: 3 * time.Second, JumpBy: -3 * time.Second, Duplicates: 5},
	})
	dir := t.TempDir()
	st, err := storage.Open(storage.Options{Dir: dir, Server: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := newTestManager(t, storeSink{st})
	cams := []Camera{{ID: "a/back20", URL: srv.URL(1)}, {ID: "a/fwd10h", URL: srv.URL(2)}, {ID: "a/wild", URL: srv.URL(3)}}
	m.Set(cams)
	waitFor(t, 15*time.Second, "cameras recording", func() bool {
		for _, c := range cams {
			if status(m, c.ID).State != StateRecording {
				return false
			}
		}
		return true
	})
	const record = 30 * time.Second
	time.Sleep(record)
	m.Close()
	stopped := time.Now()
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	const gop = time.Second
	for _, c := range cams {
		segs, err := st.Segments(c.ID, stopped.Add(-time.Hour), stopped.Add(time.Hour))
		if err != nil || len(segs) == 0 {
			t.Fatalf("%s: no segments (%v)", c.ID, err)
		}
		var indexed time.Duration
		for _, s := range segs {
			indexed += s.End.Sub(s.Start)
		}
		wall := stopped.Sub(segs[0].Start)
		t.Logf("%s: %d files, %s indexed of %s wall clock, reconnects %d", c.ID, len(segs), indexed.Round(time.Millisecond), wall.Round(time.Millisecond), status(m, c.ID).Reconnects)
		if d := indexed - wall; d > gop || d < -gop {
			t.Errorf("%s: index covers %s of %s recorded", c.ID, indexed, wall)
		}
		if wall < record {
			t.Errorf("%s: recorded from %s only, %s before the stop", c.ID, segs[0].Start, wall)
		}
		if last := segs[len(segs)-1].End; stopped.Sub(last) > gop || last.Sub(stopped) > gop {
			t.Errorf("%s: footage ends at %s, stopped at %s", c.ID, last, stopped)
		}
		if len(segs) < 2 {
			t.Errorf("%s: no segment cut at the discontinuities", c.ID)
		}
		if max := 1 + cutBurst + int(record/cutRefill) + 1; len(segs) > max {
			t.Errorf("%s: %d files in %s, want at most %d", c.ID, len(segs), record, max)
		}
		for _, s := range segs {
			out, err := exec.Command(ffmpeg, "-v", "error", "-i", st.SegmentPath(s), "-f", "null", "-").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "" {
				t.Errorf("%s: %s does not decode cleanly: %v %s", c.ID, s.File, err, out)
			}
		}
	}
}
