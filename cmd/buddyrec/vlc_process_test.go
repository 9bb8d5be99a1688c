package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// These tests repeat the two promises of zero-loss failover (issue 14)
// and process isolation (issue 15) with cameras not written here: VLC
// serving the test clip over RTSP with UDP transport, as the standards
// ask, since camsim, written beside the recorder, agrees with it too
// easily. What is checked is what a technician checks: the export's
// X-Buddyrec-Gaps, and that ffmpeg plays the export through.

// vlcClip is the clip every VLC camera serves: 25 fps, a keyframe every
// second (what checkPlaysThrough and the bounds below assume), 10 s long.
// VLC drops its sessions when the clip loops, so the cameras serve it 18
// times over (3 minutes, longer than any of these tests).
const vlcClip, vlcClipRepeats = "../../testdata/h264-aac.ts", 18

// vlcCameras starts n VLC cameras and returns them as the site's
// cam1..camN, the first critical ones critical, over UDP.
func vlcCameras(t *testing.T, n, critical int) []site.Camera {
	t.Helper()
	clip := testutil.LongClip(t, vlcClip, vlcClipRepeats)
	out := make([]site.Camera, n)
	for i := range out {
		v := testutil.StartVLC(t, clip)
		out[i] = site.Camera{Name: fmt.Sprintf("cam%d", i+1), URL: v.URL(), Critical: i < critical, Transport: "udp"}
	}
	return out
}

// TestHotStandbyFailoverWithVLC is TestHotStandbyFailoverWithoutGap with
// four VLC cameras, two of them critical with standby = "hot": over the
// kill -9 of rec-a and the failback the critical cameras' exports have no
// gap and play through; the cold ones lose no more than detection + 1 GOP
// + 1 part.
func TestHotStandbyFailoverWithVLC(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	standbyFailover(t, "hot", vlcCameras(t, 4, 2))
}

// TestWorkerKillWithVLC: rec-a records two VLC cameras in a worker each;
// one worker is killed with SIGKILL. Its camera records again in a new
// worker, losing at most 3 s (the bound); the other camera's
// export has no gap and plays through, and its worker is the same
// process as before.
func TestWorkerKillWithVLC(t *testing.T) {
	t.Parallel() // a process test: mostly waiting; two run at once (see process_test.go)
	a, before := startWorkerPerCameraOf(t, vlcCameras(t, 2, 0))
	both := []string{"rec-a/cam1", "rec-a/cam2"}
	time.Sleep(3 * time.Second)
	from := time.Now().Add(-2 * time.Second)

	victim, bystander := before[0], before[1]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, replacedAndRecording(a, victim, both...))
	time.Sleep(4 * time.Second)
	to := indexedTo(t, a, both...)

	after, _ := workersOf(a.DataDir)
	if !containsPID(after, bystander.PID) {
		t.Errorf("worker %d (pid %d, %v) was replaced too; only the victim should be: %+v", bystander.ID, bystander.PID, bystander.Cameras, after)
	}
	for _, id := range victim.Cameras {
		gaps := gapsOf(t, a, id, from, to)
		t.Logf("%s (its worker killed): gaps %v (total %v)", id, gaps, gapTotal(gaps))
		if gapTotal(gaps) > 3*time.Second {
			t.Errorf("%s (VLC) lost %v to its worker's kill, want ≤ 3 s", id, gapTotal(gaps))
		}
	}
	for _, id := range bystander.Cameras {
		if gaps := gapsOf(t, a, id, from, to); len(gaps) > 0 {
			t.Errorf("%s (VLC) records in another worker but its export has gaps %v", id, gaps)
		}
		checkPlaysThrough(t, a, id, from, to)
	}
}

// containsPID reports whether a worker of ws has pid.
func containsPID(ws []liveWorker, pid int) bool {
	for _, w := range ws {
		if w.PID == pid {
			return true
		}
	}
	return false
}
