package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestExportAcrossRealFailoverAndFailback: a real home server recording a
// simulated camera is killed with SIGKILL, its buddy adopts the camera, the
// home comes back and takes it back. `buddyrec export`, run with the
// home's config (its users_file holds only hashes, so it authenticates with
// the peer token of the gossip key), writes the range across both joins:
// ffmpeg decodes it without a single error line, its duration is the
// wall-clock range (± 1 GOP: the hole of the failover stays in the
// timeline), the hole is reported, and the manifest names the buddy's
// piece and the file's digest. H.264 + AAC and H.265.
func TestExportAcrossRealFailoverAndFailback(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	ffprobe := testutil.NeedTool(t, "ffprobe")
	for _, codec := range []string{"h264", "h265"} {
		t.Run(codec, func(t *testing.T) {
			c := testutil.Cameras(t, camsim.Options{Cameras: 1, Codec: codec})
			s := startSite(t, site.Spec{User: "tech", Password: "tech-password-1", Servers: []site.ServerSpec{
				{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}, FailbackAfter: "3s"},
				{Name: "rec-b", Buddies: []string{"rec-a"}},
			}})
			a, b := s.Server("rec-a"), s.Server("rec-b")
			eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), sees(b, "rec-a", "alive")))
			time.Sleep(4 * time.Second)
			from := time.Now().Add(-2 * time.Second)

			a.Kill()
			eventually(t, 15*time.Second, recordsExactly(b, "rec-a/cam1"))
			time.Sleep(4 * time.Second)
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b)))
			time.Sleep(4 * time.Second)
			to := indexedTo(t, a, "rec-a/cam1")

			out := filepath.Join(t.TempDir(), "evidence.mp4")
			code, stdout, stderr := runCmd("export", "-config", a.Config, "-camera", "rec-a/cam1",
				"-from", from.UTC().Format(time.RFC3339Nano), "-to", to.UTC().Format(time.RFC3339Nano), "-o", out)
			if code != 0 {
				t.Fatalf("buddyrec export: exit %d\n%s\n%s", code, stdout, stderr)
			}
			t.Logf("buddyrec export:\n%s", stdout)

			if msg, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput(); err != nil || len(strings.TrimSpace(string(msg))) > 0 {
				t.Errorf("ffmpeg -v error on the export: %v\n%s", err, msg)
			}
			dur, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", out).Output()
			if err != nil {
				t.Fatal(err)
			}
			secs, _ := strconv.ParseFloat(strings.TrimSpace(string(dur)), 64)
			got, want := time.Duration(secs*float64(time.Second)), to.Sub(from)
			if d := got - want; d > time.Second || d < -time.Second {
				t.Errorf("export lasts %v, want the wall-clock range %v ± 1 GOP (1 s)", got, want)
			}

			var m Manifest
			b2, err := os.ReadFile(filepath.Join(filepath.Dir(out), "evidence.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b2, &m); err != nil {
				t.Fatal(err)
			}
			// rec-b's footage of the outage, read from rec-b or, once the
			// home's backfill copied it back, from the home's copy (still
			// recorded_by rec-b).
			byBuddy := false
			for _, p := range m.Pieces {
				byBuddy = byBuddy || (p.RecordedBy == "rec-b" && (p.Server == "rec-b" || p.Server == "rec-a"))
			}
			if !byBuddy {
				t.Errorf("manifest pieces lack rec-b's footage of the outage: %+v", m.Pieces)
			}
			if len(m.Gaps) == 0 {
				t.Errorf("manifest reports no gap; the kill -9 failover leaves one (detection + keyframe wait)")
			}
			if m.SHA256 == "" || m.Bytes == 0 {
				t.Errorf("manifest without digest: %+v", m)
			}
		})
	}
}
