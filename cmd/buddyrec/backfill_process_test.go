package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

// These tests check archive consolidation (backfill) with real processes:
// after the buddy that recorded an outage is gone for good, the home alone
// must hold and export the outage.

func rangeQuery(cam string, from, to time.Time) string {
	return url.Values{"camera": {cam}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}.Encode()
}

func exportPlan(t *testing.T, srv *site.Server, cam string, from, to time.Time) export.Plan {
	t.Helper()
	var p export.Plan
	if err := srv.GetJSON(context.Background(), "/api/v1/export/plan?"+rangeQuery(cam, from, to), &p); err != nil {
		t.Fatalf("export plan of %s on %s: %v", cam, srv.Name, err)
	}
	return p
}

// downloadExport downloads the export of cam from srv into dir and returns the
// gaps its X-Buddyrec-Gaps header reports and the file.
func downloadExport(t *testing.T, srv *site.Server, cam string, from, to time.Time, dir string) ([]api.Gap, string) {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTP + "/api/v1/export?" + rangeQuery(cam, from, to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("export of %s from %s: %s %s", cam, srv.Name, resp.Status, b)
	}
	var gaps []api.Gap
	if err := json.Unmarshal([]byte(resp.Header.Get(export.GapsHeader)), &gaps); err != nil {
		t.Fatalf("%s header %q: %v", export.GapsHeader, resp.Header.Get(export.GapsHeader), err)
	}
	p := filepath.Join(dir, strings.ReplaceAll(cam, "/", "_")+".mp4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
	return gaps, p
}

// backfillDone is a condition: srv has nothing left to copy and has raised
// backfill.completed, since then, for every camera in cams.
func backfillDone(srv *site.Server, since time.Time, cams ...string) func() string {
	return func() string {
		var st api.Backfill
		if err := srv.GetJSON(context.Background(), "/api/v1/backfill", &st); err != nil {
			return err.Error()
		}
		if len(st.Cameras) > 0 || st.Copying != nil {
			var lines []string
			for _, c := range st.Cameras {
				lines = append(lines, c.Text)
			}
			return fmt.Sprintf("%s still copying: %s", srv.Name, strings.Join(lines, "; "))
		}
		var ev struct {
			Events []struct {
				Type    string    `json:"type"`
				Time    time.Time `json:"time"`
				Cameras []string  `json:"cameras"`
				Text    string    `json:"text"`
			} `json:"events"`
		}
		if err := srv.GetJSON(context.Background(), "/api/v1/events?limit=200", &ev); err != nil {
			return err.Error()
		}
		done := map[string]bool{}
		for _, e := range ev.Events {
			if e.Type == "backfill.completed" && !e.Time.Before(since) {
				for _, c := range e.Cameras {
					done[c] = true
				}
			}
		}
		for _, c := range cams {
			if !done[c] {
				return fmt.Sprintf("%s raised no backfill.completed for %s", srv.Name, c)
			}
		}
		return ""
	}
}

// framesDropped sums what srv's recorder dropped and received of cams.
func framesDropped(t *testing.T, srv *site.Server, cams []string) (dropped, received uint64) {
	t.Helper()
	list, err := srv.Cameras(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range cams {
		want[c] = true
	}
	for _, c := range list {
		if want[c.ID] {
			dropped += c.FramesDropped
			received += c.FramesReceived
		}
	}
	return dropped, received
}

// outage kills the home, lets the buddy record its cameras for d and
// brings the home back until the cameras failed back. It returns when the
// outage began.
func outage(t *testing.T, a, b *site.Server, ids []string, d time.Duration) time.Time {
	t.Helper()
	began := time.Now()
	a.Kill()
	eventually(t, 15*time.Second, recordsExactly(b, ids...))
	time.Sleep(d)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, all(recordsExactly(a, ids...), recordsExactly(b)))
	return began
}

// TestBackfillAfterFailback: a 30 s outage of 4 cameras (kill -9 of the
// home, the buddy adopts), failback, then the buddy is killed for good:
// the home alone exports the outage with no more gap than the failover
// itself, every copied segment is indexed as recorded by the buddy, and
// the home's recorder dropped no frame while it copied.
func TestBackfillAfterFailback(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 4, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 4), Buddies: []string{"rec-b"}, FailbackAfter: "3s"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	ids := []string{"rec-a/cam1", "rec-a/cam2", "rec-a/cam3", "rec-a/cam4"}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), sees(b, "rec-a", "alive")))
	time.Sleep(4 * time.Second)
	from := time.Now().Add(-2 * time.Second)
	outage(t, a, b, ids, 30*time.Second)

	took := eventually(t, 120*time.Second, backfillDone(a, time.Time{}, ids...))
	t.Logf("backfill done %.1fs after failback", took.Seconds())
	time.Sleep(4 * time.Second)
	to := indexedTo(t, a, ids...)

	// The recorder of the home ran through the whole copy (it started
	// before it) and dropped nothing.
	dropped, received := framesDropped(t, a, ids)
	if received == 0 || dropped != 0 {
		t.Errorf("home's recorder: %d frames dropped of %d received during the backfill, want 0", dropped, received)
	}
	var st api.Backfill
	a.GetJSON(context.Background(), "/api/v1/backfill", &st)
	if st.CopiedSegments < 4 || st.Refused != 0 || !st.RateAuto || st.RateChosen != "loopback" || st.RateMbps != 0 {
		t.Errorf("backfill status %+v, want ≥ 4 segments copied at the default \"auto\" (unlimited over loopback), none refused", st)
	}

	// The gaps with the buddy still there: the failover's own.
	before := map[string][]api.Gap{}
	for _, id := range ids {
		before[id] = exportPlan(t, a, id, from, to).Gaps
	}
	b.Kill()
	eventually(t, 15*time.Second, sees(a, "rec-b", "dead"))

	dir := t.TempDir()
	ffprobe, haveFFprobe := testutil.LookTool(t, "ffprobe")
	for _, id := range ids {
		gaps, file := downloadExport(t, a, id, from, to, dir)
		failover := gapTotal(before[id])
		t.Logf("%s: gaps with the buddy %v (%v), home alone %v (%v)", id, before[id], failover, gaps, gapTotal(gaps))
		if gapTotal(gaps) > failover+100*time.Millisecond || len(gaps) > len(before[id]) {
			t.Errorf("%s: the home alone exports gaps %v, more than the failover's %v", id, gaps, before[id])
		}
		if failover > 5*time.Second {
			t.Errorf("%s: the failover itself left %v unrecorded", id, failover)
		}
		plan := exportPlan(t, a, id, from, to)
		byBuddy := time.Duration(0)
		for _, p := range plan.Pieces {
			if p.Server != "rec-a" {
				t.Errorf("%s: piece %+v comes from %s, not from the home", id, p, p.Server)
			}
			if p.RecordedBy == "rec-b" {
				byBuddy += p.End.Sub(p.Start)
			}
		}
		if byBuddy < 25*time.Second {
			t.Errorf("%s: the home's export holds %v recorded by rec-b, want the ~30 s outage", id, byBuddy)
		}
		if haveFFprobe {
			out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", file).CombinedOutput()
			frames, _ := strconv.Atoi(strings.TrimSpace(string(out)))
			if want := int((to.Sub(from) - gapTotal(gaps) - 2*time.Second).Seconds() * 25); err != nil || frames < want {
				t.Errorf("%s: the home's export holds %d frames (%v), want ≥ %d", id, frames, err, want)
			}
		}
	}
}

// TestBackfillResumesAfterKill: the home is killed -9 in the middle of a
// (slow, rate-limited) copy; restarted, it resumes the copy from where it
// stopped, never indexes the partial file, and ends whole.
func TestBackfillResumesAfterKill(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	backfillKilledMidCopy(t, false)
}

// TestBackfillRefusesCorruptedCopy: as above, but while the home is down a
// byte of the partial copy on its disk is flipped (a bad sector): the
// resumed copy fails the digest, is refused, never indexed, and copied
// again from the start.
func TestBackfillRefusesCorruptedCopy(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	backfillKilledMidCopy(t, true)
}

func backfillKilledMidCopy(t *testing.T, corrupt bool) {
	c := startCameras(t, 1, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}, FailbackAfter: "3s", Storage: "backfill_mbps = 1.5\n"},
		{Name: "rec-b", Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	ids := []string{"rec-a/cam1"}
	eventually(t, 20*time.Second, all(recordsExactly(a, ids...), sees(b, "rec-a", "alive")))
	time.Sleep(3 * time.Second)
	from := time.Now().Add(-2 * time.Second)
	outage(t, a, b, ids, 12*time.Second)

	var midway api.BackfillCopy
	eventually(t, 60*time.Second, func() string {
		var st api.Backfill
		if err := a.GetJSON(context.Background(), "/api/v1/backfill", &st); err != nil {
			return err.Error()
		}
		if st.Copying == nil || st.Copying.Done < 400<<10 {
			return fmt.Sprintf("not far into a copy yet: %+v", st.Copying)
		}
		midway = *st.Copying
		return ""
	})
	// While it copies, every server's status page shows it on the
	// camera's row, and export still plans the outage whole.
	for _, srv := range []*site.Server{a, b} {
		resp, err := http.Get("http://" + srv.HTTP + "/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`<div class="backfill">rec-a/cam1: \d+ s at rec-b, copying \d+ %</div>`).Match(page) {
			t.Errorf("%s's status page does not show the copy in progress", srv.Name)
		}
	}
	if p := exportPlan(t, a, "rec-a/cam1", from, time.Now().Add(-2*time.Second)); gapTotal(p.Gaps) > 5*time.Second {
		t.Errorf("export during the copy: gaps %+v", p.Gaps)
	}
	killedAt := time.Now()
	a.Kill()
	// What the kill left: a partial copy, and no index entry for it.
	st, err := storage.Open(storage.Options{Dir: a.DataDir, Server: "rec-a"})
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := st.Segments("rec-a/cam1", midway.SegmentStart, midway.SegmentStart.Add(time.Millisecond))
	for _, seg := range segs {
		if seg.RecordedBy == "rec-b" {
			t.Errorf("the copy being made at the kill is indexed: %+v", seg)
		}
	}
	st.Close()
	if corrupt {
		part := filepath.Join(a.DataDir, ".backfill", "copy.part")
		f, err := os.OpenFile(part, os.O_RDWR, 0)
		if err != nil {
			t.Fatalf("the partial copy: %v", err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, 1000)
		b[0] ^= 0xff
		f.WriteAt(b, 1000)
		f.Close()
	}
	restarted := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	// The buddy adopted the camera again while the home restarted: the
	// episode after the restart ends once it handed it back and what it
	// recorded meanwhile is copied too.
	eventually(t, 40*time.Second, all(recordsExactly(a, ids...), recordsExactly(b)))
	eventually(t, 120*time.Second, backfillDone(a, restarted, ids...))
	logText, _ := os.ReadFile(a.Log)
	if !strings.Contains(string(logText), "backfill: resuming copy") {
		t.Errorf("the home's log does not show the copy resumed after the restart")
	}
	var bf api.Backfill
	a.GetJSON(context.Background(), "/api/v1/backfill", &bf)
	if refused := strings.Contains(string(logText), "copy refused: sha-256"); corrupt != refused || corrupt != (bf.Refused > 0) {
		t.Errorf("corrupted copy %v: refusal logged %v, refused copies %d", corrupt, refused, bf.Refused)
	}
	time.Sleep(2 * time.Second)
	// The outage the buddy recorded and the copy after it, up to the
	// home's own kill mid-copy. That second crash is a failover of its
	// own and is left out: at its edge the buddy's index was seen to end
	// its make-before-break tail segment about a second later than the
	// fragments of the very same file (identical bytes at the home) reach.
	to := killedAt.Add(-3 * time.Second)
	withBuddy := exportPlan(t, a, "rec-a/cam1", from, to)
	before := withBuddy.Gaps
	b.Kill()
	eventually(t, 15*time.Second, sees(a, "rec-b", "dead"))
	gaps, _ := downloadExport(t, a, "rec-a/cam1", from, to, t.TempDir())
	// The home's own restart adds a gap of its own; the buddy's footage
	// must leave no more than the buddy's absence did.
	if gapTotal(gaps) > gapTotal(before)+100*time.Millisecond {
		t.Errorf("home alone exports gaps %v, with the buddy %v", gaps, before)
		for _, p := range withBuddy.Pieces {
			t.Logf("with the buddy: %s-%s from %s recorded by %s (segment %s)", p.Start.Format("15:04:05.000"), p.End.Format("15:04:05.000"), p.Server, p.RecordedBy, p.SegmentStart.Format("15:04:05.000"))
		}
		for _, p := range exportPlan(t, a, "rec-a/cam1", from, to).Pieces {
			t.Logf("home alone: %s-%s from %s recorded by %s (segment %s)", p.Start.Format("15:04:05.000"), p.End.Format("15:04:05.000"), p.Server, p.RecordedBy, p.SegmentStart.Format("15:04:05.000"))
		}
	}
	a.Stop(10 * time.Second)
	checkDisk(t, a.DataDir, "rec-a")
}

// TestBackfillReplacedDisk: the home's data dir is deleted while it is
// down (a replaced disk; the buddy is told to forget its old node key) and
// it is restarted empty: within a minute it holds again, by itself, the
// footage the buddy recorded of its cameras.
func TestBackfillReplacedDisk(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	c := startCameras(t, 2, nil)
	s := startSite(t, pairSpec(c))
	a, b, ids := pairUp(t, s)
	time.Sleep(3 * time.Second)
	a.Kill()
	eventually(t, 15*time.Second, recordsExactly(b, ids...))
	time.Sleep(15 * time.Second)
	if err := os.RemoveAll(a.DataDir); err != nil {
		t.Fatal(err)
	}
	// A new disk means a new node key: the technician tells the buddy,
	// as README's "Replacing a server" says.
	if code, out, errOut := runCmd("forget", "-config", b.Config, "rec-a"); code != 0 {
		t.Fatalf("buddyrec forget rec-a on rec-b: exit %d\n%s%s", code, out, errOut)
	}
	restarted := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, all(recordsExactly(a, ids...), recordsExactly(b)))
	eventually(t, 60*time.Second, func() string {
		for _, id := range ids {
			var theirs, ours []storage.Segment
			q := "/api/v1/segments?" + rangeQuery(id, restarted.Add(-time.Hour), time.Now())
			if err := b.GetJSON(context.Background(), q, &theirs); err != nil {
				return err.Error()
			}
			if err := a.GetJSON(context.Background(), q, &ours); err != nil {
				return err.Error()
			}
			have := map[int64]bool{}
			var own []storage.Segment
			for _, s := range ours {
				if s.RecordedBy == "rec-b" {
					have[s.Start.UnixNano()] = true
				} else {
					own = append(own, s)
				}
			}
			n := 0
			for _, s := range theirs {
				// The buddy's last moments after the failback overlap
				// the home's own footage (make before break): those
				// need no copy.
				if !s.Open && !coveredBy(own, s) {
					n++
					if !have[s.Start.UnixNano()] {
						return fmt.Sprintf("%s: rec-a lacks rec-b's segment from %v", id, s.Start)
					}
				}
			}
			if n == 0 {
				return fmt.Sprintf("%s: rec-b lists no closed segment", id)
			}
		}
		return ""
	})
	t.Logf("the home held the buddy's footage again %.1fs after its restart", time.Since(restarted).Seconds())
	b.Kill()
	eventually(t, 15*time.Second, sees(a, "rec-b", "dead"))
	for _, id := range ids {
		plan := exportPlan(t, a, id, restarted.Add(-20*time.Second), restarted)
		byBuddy := time.Duration(0)
		for _, p := range plan.Pieces {
			if p.RecordedBy == "rec-b" && p.Server == "rec-a" {
				byBuddy += p.End.Sub(p.Start)
			}
		}
		if byBuddy < 10*time.Second {
			t.Errorf("%s: the home alone exports %v of the buddy's footage before its restart, want ≥ 10 s: %+v", id, byBuddy, plan)
		}
	}
}

// coveredBy reports whether segs (in time order) cover s to within two
// frame intervals.
func coveredBy(segs []storage.Segment, s storage.Segment) bool {
	const tol = 80 * time.Millisecond
	cursor := s.Start
	for _, o := range segs {
		if o.End.Before(cursor) {
			continue
		}
		if o.Start.Sub(cursor) > tol {
			return false
		}
		cursor = o.End
		if s.End.Sub(cursor) <= tol {
			return true
		}
	}
	return s.End.Sub(cursor) <= tol
}
