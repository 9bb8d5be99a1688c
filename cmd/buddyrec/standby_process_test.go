package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// standbyHolds is a condition: srv holds exactly the standby sessions ids
// in mode, each working (its camera delivers keyframes).
func standbyHolds(srv *site.Server, mode string, ids ...string) func() string {
	return func() string {
		var resp api.Cameras
		if err := srv.GetJSON(context.Background(), "/api/v1/cameras", &resp); err != nil {
			return err.Error()
		}
		var got []string
		for _, s := range resp.Standby {
			if s.Standby != mode || s.State != "recording" {
				return fmt.Sprintf("%s: standby %s is %s %s (%s)", srv.Name, s.ID, s.Standby, s.State, s.Error)
			}
			got = append(got, s.ID)
		}
		sort.Strings(got)
		sort.Strings(ids)
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			return fmt.Sprintf("%s holds standby %v, want %v", srv.Name, got, ids)
		}
		return ""
	}
}

// gapList is the gaps exportGaps reports (X-Buddyrec-Gaps), decoded.
func gapList(t *testing.T, srv *site.Server, cam string, from, to time.Time) []api.Gap {
	t.Helper()
	var gaps []api.Gap
	h := exportGaps(t, srv, cam, from, to)
	if err := json.Unmarshal([]byte(h), &gaps); err != nil {
		t.Fatalf("export %s: %s header %q: %v", cam, export.GapsHeader, h, err)
	}
	return gaps
}

func gapTotal(gaps []api.Gap) time.Duration {
	var d time.Duration
	for _, g := range gaps {
		d += g.End.Sub(g.Start)
	}
	return d
}

// killAndDetect kills srv with SIGKILL and returns how long its buddy took
// to see it dead.
func killAndDetect(t *testing.T, srv, buddySrv *site.Server) time.Duration {
	t.Helper()
	killed := time.Now()
	srv.Kill()
	eventually(t, 15*time.Second, sees(buddySrv, srv.Name, buddy.StateDead))
	return time.Since(killed)
}

// TestHotStandbyFailoverWithoutGap: a home with 4 cameras, 2 critical with
// standby = "hot", is killed with SIGKILL and comes back: over the outage
// and the failback the critical cameras' exports report no gap, while the
// others lose no more than detection + 1 GOP + 1 part, all of it at the
// failover. The buddy holds the
// standby sessions before, adopts all four, and holds the standby again
// after the failback.
func TestHotStandbyFailoverWithoutGap(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	standbyFailover(t, "hot", cams(startCameras(t, 4, nil), 1, 4, 1, 2))
}

// TestMirrorStandbyFailoverWithoutGap: the same with standby = "mirror",
// and then the home is killed again, its data_dir deleted and the home
// restarted empty: the critical cameras' footage from before that crash
// is exported, without a gap, from the buddy's mirror, and from the home
// (site-wide) too.
func TestMirrorStandbyFailoverWithoutGap(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	standbyFailover(t, "mirror", cams(startCameras(t, 4, nil), 1, 4, 1, 2))
}

// standbyFailover runs the failover and failback of rec-a's cameras (the
// first critical, as cams and vlcCameras make them) onto rec-b with
// standby = mode, and checks what the tests above say.
func standbyFailover(t *testing.T, mode string, cameras []site.Camera) {
	const gop, part = time.Second, time.Second // the clip's GOP; site.Spec's default part
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cameras, Buddies: []string{"rec-b"}, FailbackAfter: "3s", Standby: mode},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	killWorkersAfter(t, a)
	killWorkersAfter(t, b)
	var all4, critical []string // all of rec-a's cameras; its critical ones
	isCritical := map[string]bool{}
	for _, c := range cameras {
		id := "rec-a/" + c.Name
		all4 = append(all4, id)
		if c.Critical {
			critical = append(critical, id)
			isCritical[id] = true
		}
	}
	eventually(t, 30*time.Second, all(recordsExactly(a, all4...), recordsExactly(b), standbyHolds(b, mode, critical...)))
	// The ring fills (window + 2 GOPs), and the home has footage before the kill.
	time.Sleep(6 * time.Second)
	from := time.Now().Add(-3 * time.Second)

	detect := killAndDetect(t, a, b)
	eventually(t, 15*time.Second, all(recordsExactly(b, all4...), standbyHolds(b, mode)))
	time.Sleep(4 * time.Second)
	restarted := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, all(recordsExactly(a, all4...), recordsExactly(b), standbyHolds(b, mode, critical...)))
	time.Sleep(5 * time.Second)
	to := indexedTo(t, a, all4...)

	bound := detect + gop + part
	for _, id := range all4 {
		gaps := gapList(t, a, id, from, to)
		t.Logf("%s: gaps %v (total %v; detection %v)", id, gaps, gapTotal(gaps), detect.Round(time.Millisecond))
		if isCritical[id] {
			if len(gaps) != 0 {
				t.Errorf("%s (critical, %s standby): export reports gaps %v over the outage and failback, want none", id, mode, gaps)
			}
			continue
		}
		// A cold camera loses the failover's hole, and nothing at the
		// failback (make before break).
		if d := gapTotal(gaps); d > bound {
			t.Errorf("%s (cold): lost %v over the outage and failback, want at most detection + 1 GOP + 1 part = %v", id, d, bound)
		}
		for _, g := range gaps {
			if !g.Start.Before(restarted) {
				t.Errorf("%s (cold): gap %v at the failback", id, g)
			}
		}
	}
	checkPlaysThrough(t, a, critical[0], from, to)
	if mode != "mirror" {
		return
	}

	// The home's disk is lost: kill it, delete its data_dir, restart it
	// empty. The footage from before is on the buddy's mirror.
	crash := time.Now()
	killAndDetect(t, a, b)
	if err := os.RemoveAll(a.DataDir); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, recordsExactly(b, all4...))
	before := crash.Add(-1500 * time.Millisecond)
	for _, id := range critical {
		if gaps := gapList(t, b, id, from, before); len(gaps) != 0 {
			t.Errorf("%s: export from the buddy (home dead, disk gone) reports gaps %v, want the mirror whole", id, gaps)
		}
	}
	checkPlaysThrough(t, b, "rec-a/cam1", from, before)
	// A new disk is a new node key: the buddy forgets the key it pinned
	// (README, "Replacing a server"), then the home starts empty.
	if code, stdout, stderr := runCmd("forget", "-config", b.Config, "rec-a"); code != 0 {
		t.Fatalf("buddyrec forget: %d\n%s%s", code, stdout, stderr)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, all(recordsExactly(a, all4...), recordsExactly(b), standbyHolds(b, mode, critical...)))
	for _, id := range critical {
		if gaps := gapList(t, a, id, from, before); len(gaps) != 0 {
			t.Errorf("%s: export from the emptied home reports gaps %v, want the buddy's mirror whole", id, gaps)
		}
	}
}

// TestStandbyRefusedByCamera: a critical camera that serves one session
// only refuses the buddy's hot standby: the buddy raises
// standby.unavailable with the camera's answer, and the home records the
// camera without a gap all along. When the home dies the buddy takes the
// camera over cold (the session is free then).
func TestStandbyRefusedByCamera(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, map[int]camsim.Fault{1: {MaxSessions: 1}})
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2, 1, 2), Buddies: []string{"rec-b"}, FailbackAfter: "3s", Standby: "hot"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 30*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), func() string {
		var resp api.Cameras
		if err := b.GetJSON(context.Background(), "/api/v1/cameras", &resp); err != nil {
			return err.Error()
		}
		for _, sb := range resp.Standby {
			if sb.ID == "rec-a/cam2" && sb.State == "recording" {
				return ""
			}
		}
		return fmt.Sprintf("rec-b holds no working standby for rec-a/cam2: %+v", resp.Standby)
	}))
	from := time.Now()
	eventually(t, 20*time.Second, func() string {
		var ev struct {
			Events []struct {
				Type      string   `json:"type"`
				Cameras   []string `json:"cameras"`
				Condition string   `json:"condition"`
				Text      string   `json:"text"`
			} `json:"events"`
		}
		if err := b.GetJSON(context.Background(), "/api/v1/events?limit=50", &ev); err != nil {
			return err.Error()
		}
		for _, e := range ev.Events {
			if e.Type == "standby.unavailable" {
				if len(e.Cameras) != 1 || e.Cameras[0] != "rec-a/cam1" || e.Condition != "standby/rec-a/cam1" || !strings.Contains(e.Text, "453") {
					return fmt.Sprintf("standby.unavailable event %+v", e)
				}
				return ""
			}
		}
		return "rec-b raised no standby.unavailable"
	})
	var resp api.Cameras
	if err := b.GetJSON(context.Background(), "/api/v1/cameras", &resp); err != nil {
		t.Fatal(err)
	}
	for _, sb := range resp.Standby {
		if sb.ID == "rec-a/cam1" && (sb.State != "offline" || !strings.Contains(sb.Error, "453")) {
			t.Errorf("refused standby shows %s %q", sb.State, sb.Error)
		}
	}
	time.Sleep(5 * time.Second) // the standby retries meanwhile
	to := indexedTo(t, a, "rec-a/cam1")
	if gaps := gapList(t, a, "rec-a/cam1", from, to); len(gaps) != 0 {
		t.Errorf("the home's recording of the one-session camera has gaps %v while the buddy's standby was refused", gaps)
	}
	cams, err := a.Cameras(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range cams {
		if ci.ID == "rec-a/cam1" && ci.Reconnects != 0 {
			t.Errorf("the home's session of rec-a/cam1 reconnected %d times", ci.Reconnects)
		}
	}

	killAndDetect(t, a, b)
	eventually(t, 15*time.Second, recordsExactly(b, "rec-a/cam1", "rec-a/cam2"))
}

// checkPlaysThrough downloads the export of cam over [from, to) from srv
// and, where ffmpeg and ffprobe are installed, checks what a viewer would:
// it decodes without an error line, lasts the range (± 1 GOP and 2
// frames: it starts at the keyframe before from, less than a GOP early,
// ends with the frame that holds to, and two recorders' copies may join
// a frame apart), and holds a frame every 40 ms of it (25 fps), so no
// stretch is missing inside the file and none plays twice where two
// recorders' copies join.
func checkPlaysThrough(t *testing.T, srv *site.Server, cam string, from, to time.Time) {
	t.Helper()
	ffmpeg, okMpeg := testutil.LookTool(t, "ffmpeg")
	ffprobe, okProbe := testutil.LookTool(t, "ffprobe")
	if !okMpeg || !okProbe {
		return
	}
	out := filepath.Join(t.TempDir(), "export.mp4")
	q := url.Values{"camera": {cam}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	if err := download("http://"+srv.HTTP+"/api/v1/export?"+q.Encode(), out); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput(); err != nil || len(strings.TrimSpace(string(msg))) > 0 {
		t.Errorf("%s: ffmpeg -v error on the export: %v\n%s", cam, err, msg)
	}
	probe, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v", "-count_packets",
		"-show_entries", "stream=nb_read_packets:format=duration", "-of", "default=nw=1:nk=1", out).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	f := strings.Fields(string(probe))
	if len(f) != 2 {
		t.Fatalf("ffprobe printed %q", probe)
	}
	frames, _ := strconv.Atoi(f[0])
	secs, _ := strconv.ParseFloat(f[1], 64)
	dur := time.Duration(secs * float64(time.Second))
	t.Logf("%s: export of %v lasts %v with %d video frames", cam, to.Sub(from).Round(time.Millisecond), dur.Round(time.Millisecond), frames)
	const gop, frame = time.Second, 40 * time.Millisecond // the camsim clip's
	if d := dur - to.Sub(from); d > gop+2*frame || d < -gop-2*frame {
		t.Errorf("%s: the export lasts %v, want the range %v ± 1 GOP and 2 frames", cam, dur, to.Sub(from))
	}
	if lo, hi := int(secs*25*0.98), int(secs*25*1.02)+1; frames < lo || frames > hi {
		t.Errorf("%s: the export holds %d video frames over %.2fs, want %d–%d (25 fps: no stretch missing, no frame twice)", cam, frames, secs, lo, hi)
	}
}

// TestHotStandbyMovesWithThePlanner: rec-a's critical camera has its hot
// standby on rec-b, its first buddy; rec-b is killed and the standby
// moves to rec-c, the planner's next choice; then rec-a is killed and
// rec-c takes the camera over without a gap.
func TestHotStandbyMovesWithThePlanner(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2, 1), Buddies: []string{"rec-b", "rec-c"}, FailbackAfter: "3s", Standby: "hot"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
		{Name: "rec-c", Buddies: []string{"rec-a"}},
	}})
	a, b, cc := s.Server("rec-a"), s.Server("rec-b"), s.Server("rec-c")
	eventually(t, 30*time.Second, all(recordsExactly(a, "rec-a/cam1", "rec-a/cam2"), standbyHolds(b, "hot", "rec-a/cam1"), standbyHolds(cc, "hot")))
	b.Kill()
	eventually(t, 20*time.Second, all(sees(cc, "rec-b", buddy.StateDead), standbyHolds(cc, "hot", "rec-a/cam1")))
	time.Sleep(7 * time.Second) // rec-c's ring fills, rec-a records on
	from := time.Now().Add(-3 * time.Second)
	killAndDetect(t, a, cc)
	eventually(t, 15*time.Second, recordsExactly(cc, "rec-a/cam1", "rec-a/cam2"))
	time.Sleep(5 * time.Second)
	to := indexedTo(t, cc, "rec-a/cam1")
	if gaps := gapList(t, cc, "rec-a/cam1", from, to); len(gaps) != 0 {
		// rec-a is dead: its footage before the kill is not reachable, so
		// the export from rec-c must hold it from the ring.
		t.Errorf("rec-a/cam1 from rec-c across the takeover: gaps %v, want none (the ring covers the footage before the kill)", gaps)
	}
}

// TestMirrorArchiveSurvivesTheHomesDisk: a home's 2 critical cameras are
// mirrored on its buddy; the home is killed -9, its data_dir deleted (a
// dead disk), the buddy told to forget its old node key, and the home
// restarted empty. The pre-crash footage is exported from the buddy's
// mirror meanwhile; within a minute the home holds it again in its own
// index (backfill copies the mirror's segments); and once the buddy is
// killed for good, the home alone exports it without a gap, in a file
// ffmpeg decodes clean that lasts the range.
func TestMirrorArchiveSurvivesTheHomesDisk(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 2, 1, 2), Buddies: []string{"rec-b"}, FailbackAfter: "3s", Standby: "mirror"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	ids := []string{"rec-a/cam1", "rec-a/cam2"}
	eventually(t, 30*time.Second, all(recordsExactly(a, ids...), recordsExactly(b), standbyHolds(b, "mirror", ids...)))
	// The mirror starts at a keyframe after its session opened: the range
	// starts a little later, and ends before the home's last unflushed
	// part (it is the mirror's footage that must survive, not the home's).
	time.Sleep(2 * time.Second)
	from := time.Now()
	time.Sleep(10 * time.Second)
	crash := time.Now()
	to := crash.Add(-1500 * time.Millisecond)
	killAndDetect(t, a, b)
	if err := os.RemoveAll(a.DataDir); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, recordsExactly(b, ids...))
	for _, id := range ids {
		if gaps := gapList(t, b, id, from, to); len(gaps) != 0 {
			t.Errorf("%s: export from the buddy (home dead, disk gone) reports gaps %v, want the mirror whole", id, gaps)
		}
	}
	if code, stdout, stderr := runCmd("forget", "-config", b.Config, "rec-a"); code != 0 {
		t.Fatalf("buddyrec forget rec-a on rec-b: exit %d\n%s%s", code, stdout, stderr)
	}
	restarted := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, all(recordsExactly(a, ids...), recordsExactly(b), standbyHolds(b, "mirror", ids...)))
	// The home's own index, not the site-wide export: every piece of the
	// pre-crash range is served by the home, with no gap.
	eventually(t, 60*time.Second, func() string {
		for _, id := range ids {
			plan := exportPlan(t, a, id, from, to)
			if len(plan.Gaps) != 0 {
				return fmt.Sprintf("%s: the home's plan of the pre-crash range has gaps %v", id, plan.Gaps)
			}
			if len(plan.Pieces) == 0 {
				return fmt.Sprintf("%s: the home's plan of the pre-crash range is empty", id)
			}
			for _, p := range plan.Pieces {
				if p.Server != "rec-a" {
					return fmt.Sprintf("%s: %s–%s is still served by %s", id, p.Start.Format("15:04:05.000"), p.End.Format("15:04:05.000"), p.Server)
				}
			}
		}
		return ""
	})
	t.Logf("the home held the mirror's pre-crash footage again %.1fs after its restart", time.Since(restarted).Seconds())

	b.Kill()
	eventually(t, 15*time.Second, sees(a, "rec-b", buddy.StateDead))
	for _, id := range ids {
		if gaps := gapList(t, a, id, from, to); len(gaps) != 0 {
			t.Errorf("%s: the home alone (buddy dead) exports the pre-crash range with gaps %v, want none", id, gaps)
			for _, p := range exportPlan(t, a, id, from, to).Pieces {
				t.Logf("home alone: %s–%s from %s recorded by %s", p.Start.Format("15:04:05.000"), p.End.Format("15:04:05.000"), p.Server, p.RecordedBy)
			}
		}
		// The home's own footage of the range died with its disk: what it
		// exports now is the mirror's, copied back.
		for _, p := range exportPlan(t, a, id, from, to).Pieces {
			if p.Server != "rec-a" || p.RecordedBy != "rec-b" {
				t.Errorf("%s: piece %s–%s served by %s recorded by %s, want the mirror's copy (rec-b) at the home", id, p.Start.Format("15:04:05.000"), p.End.Format("15:04:05.000"), p.Server, p.RecordedBy)
			}
		}
		checkPlaysThrough(t, a, id, from, to)
	}
}
