package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/recorder"
)

// benchFailover kills a server recording n cameras with SIGKILL, runs
// times, and measures what its buddy does: detection, takeover, and the
// footage each camera lost, read from the site's index (the recordings
// API: every segment the live servers indexed) after the failback. With
// -standby hot or mirror every camera is critical and the buddy holds a
// standby session for each; with hot it also measures what a standby
// costs in memory against bitrate × the ring's window.
func benchFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("cameras", 50, "cameras on the server that is killed")
	runs := fs.Int("runs", 5, "kill/restart cycles")
	clips := fs.String("clips", "testdata", "folder with the camera clips")
	keepalive := fs.String("keepalive", "", "[cluster] keepalive (default: the product default)")
	failoverAfter := fs.String("failover-after", "", "[cluster] failover_after (default: the product default)")
	planned := fs.Bool("planned", false, "drain (and undrain) rec-a instead of kill -9: frames lost per camera and time until every camera records on the buddy")
	standby := fs.String("standby", "cold", "[failover] standby of the killed server: cold, hot or mirror (hot and mirror make every camera critical)")
	perWorker := fs.Int("cameras-per-worker", config.DefaultCamerasPerWorker, "[recorder] cameras_per_worker of the buddy; with 0 its standby sessions run in its own process, and the Go runtime's split of their memory applies to all of it")
	profile := fs.String("profile", "", "with -standby hot: save the buddy's heap profiles (inuse_space) without and with the standby sessions in this folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *standby {
	case "cold", "hot", "mirror":
	default:
		return fmt.Errorf("-standby: want cold, hot or mirror, not %q", *standby)
	}
	env, err := newBenchEnv(ctx, *n, *clips, "h264", false)
	if err != nil {
		return err
	}
	defer env.Close()
	a := site.ServerSpec{Name: "rec-a", Buddies: []string{"rec-b"}, FailbackAfter: "3s", Standby: *standby, Cameras: env.cameras()}
	for i := range a.Cameras {
		a.Cameras[i].Critical = *standby != "cold"
	}
	// The buddy serves its Go profiles, so that its memory can be split
	// into what the runtime says it is.
	pprofPort, err := site.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", pprofPort)
	b := site.ServerSpec{Name: "rec-b", Buddies: []string{"rec-a"}, Args: []string{"-pprof", pprofAddr},
		Extra: fmt.Sprintf("[recorder]\ncameras_per_worker = %d\n", *perWorker)}
	if *profile != "" {
		// Every 4 KiB allocated sampled, not every 512 KiB: per-camera
		// figures of a few KiB show.
		b.Exec = []string{"env", "GODEBUG=memprofilerate=4096"}
	}
	s, err := site.New(site.Spec{Dir: env.dir, Bin: env.bin, Servers: []site.ServerSpec{a, b}, Keepalive: *keepalive, FailoverAfter: *failoverAfter})
	if err != nil {
		return err
	}
	defer s.StopAll()
	ra, rb := s.Server("rec-a"), s.Server("rec-b")
	// The buddy starts alone, so its memory without standby sessions is
	// known before the home gives it any.
	if err := rb.Start(); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	var memAlone procMemory
	var alone processSet
	if *standby == "hot" {
		if memAlone, err = sampleMemory(ctx, rb.Pid(), pprofAddr, *profile, "heap-buddy-alone"); err != nil {
			return fmt.Errorf("buddy memory: %w", err)
		}
		alone = weighProcesses(serverPids(rb))
	}
	if err := ra.Start(); err != nil {
		return err
	}
	if *planned {
		return benchPlanned(ctx, stdout, ra, rb, *n, *runs)
	}

	var detect, takeover, shown, lost []float64
	for run := 1; run <= *runs; run++ {
		if err := waitRecording(ctx, ra, *n, 60*time.Second); err != nil {
			return err
		}
		// rec-b must have released every camera (failback done), see
		// rec-a alive and hold every standby session.
		if err := waitFor(ctx, 60*time.Second, func() bool {
			var resp api.Cameras
			if rb.GetJSON(ctx, "/api/v1/cameras", &resp) != nil || serverState(ctx, rb, "rec-a") != buddy.StateAlive {
				return false
			}
			working := 0
			for _, sb := range resp.Standby {
				if sb.State == recorder.StateRecording {
					working++
				}
			}
			return len(resp.Cameras) == 0 && (*standby == "cold" || working == *n)
		}); err != nil {
			return fmt.Errorf("run %d: rec-b did not settle: %w", run, err)
		}
		if *standby == "hot" && run == 1 {
			// Let every ring fill to its window (+ 2 GOPs), then weigh it.
			time.Sleep(8 * time.Second)
			var resp api.Cameras
			if err := rb.GetJSON(ctx, "/api/v1/cameras", &resp); err != nil {
				return err
			}
			memWith, err := sampleMemory(ctx, rb.Pid(), pprofAddr, *profile, fmt.Sprintf("heap-buddy-%d-hot", *n))
			if err != nil {
				return fmt.Errorf("buddy memory: %w", err)
			}
			reportStandbyMemory(stdout, resp.Standby, memWith, memAlone, weighProcesses(serverPids(rb)), alone)
		}
		// The loss is measured from 4 s before the kill: the home has
		// recorded at least that long.
		time.Sleep(5 * time.Second)
		killed := time.Now()
		ra.Kill()
		var detected, took, seen time.Time
		err := waitFor(ctx, 60*time.Second, func() bool {
			if detected.IsZero() && serverState(ctx, rb, "rec-a") == buddy.StateDead {
				detected = time.Now()
			}
			camsB, err := rb.Cameras(ctx)
			if err != nil {
				return false
			}
			count, last := adopted(camsB, "rec-a")
			if count < *n {
				return false
			}
			// The product's instants, not the polls': a cold takeover's
			// Since is its first keyframe written, a hot standby's the
			// moment its writer had written its ring and went on live, a
			// mirror's the moment it was told. seen is when the API
			// showed all of them: the status heartbeat and this poll later.
			took, seen = last, time.Now()
			return true
		})
		if err != nil {
			return fmt.Errorf("run %d: rec-b did not adopt all cameras: %w", run, err)
		}
		// A hot standby's Since is the order's arrival until its writer,
		// woken by the order, has written its ring, then that moment:
		// read it again once every writer has (and a heartbeat has
		// carried it).
		time.Sleep(300 * time.Millisecond)
		if camsB, err := rb.Cameras(ctx); err == nil {
			_, took = adopted(camsB, "rec-a")
		}
		// detection: rec-b's server.down event, when its control loop
		// acted on the death (the poll above only bounds it)
		if at, ok := downEventTime(ctx, rb, "rec-a", killed); ok {
			detected = at
		}
		if detected.IsZero() {
			detected = took
		}
		d, t := detected.Sub(killed).Seconds(), took.Sub(killed).Seconds()
		detect, takeover = append(detect, d), append(takeover, t)
		shown = append(shown, seen.Sub(killed).Seconds())

		// The failback, then the footage lost around the kill, from the index.
		time.Sleep(3 * time.Second)
		if err := ra.Start(); err != nil {
			return err
		}
		if err := waitFor(ctx, 60*time.Second, func() bool {
			rec, err := rb.Recording(ctx)
			return err == nil && len(rec) == 0 && waitRecording(ctx, ra, *n, time.Millisecond) == nil
		}); err != nil {
			return fmt.Errorf("run %d: no failback: %w", run, err)
		}
		time.Sleep(3 * time.Second) // the newest footage is indexed a part and a sync later
		var runLost []float64
		worst, worstGaps := "", []api.Gap(nil)
		for i := 1; i <= *n; i++ {
			id := fmt.Sprintf("rec-a/cam%d", i)
			gaps, err := lostAround(ctx, ra, id, killed)
			if err != nil {
				return fmt.Errorf("run %d: %w", run, err)
			}
			l := gapSum(gaps)
			if l > 0 && (worst == "" || l > gapSum(worstGaps)) {
				worst, worstGaps = id, gaps
			}
			runLost = append(runLost, l.Seconds())
		}
		lost = append(lost, runLost...)
		fmt.Fprintf(stdout, "run %d: detected after %.2fs, all %d cameras recorded by rec-b after %.2fs (takeover − detection %.2fs; the API showed it %.2fs later); footage lost per camera median %.2fs max %.2fs\n",
			run, d, *n, t, t-d, shown[len(shown)-1]-t, median(runLost), maxOf(runLost))
		for _, g := range worstGaps {
			fmt.Fprintf(stdout, "  %s: no footage from kill %+.2fs to %+.2fs\n", worst, g.Start.Sub(killed).Seconds(), g.End.Sub(killed).Seconds())
		}
	}
	fmt.Fprintf(stdout, "\nfailover of %d cameras, standby %q, over %d runs (kill -9 to every camera recorded by the buddy):\n", *n, *standby, *runs)
	fmt.Fprintf(stdout, "  takeover   median %.2fs  max %.2fs\n", median(takeover), maxOf(takeover))
	fmt.Fprintf(stdout, "  detection  median %.2fs  max %.2fs  (rec-b's server.down event)\n", median(detect), maxOf(detect))
	diffs := make([]float64, len(takeover))
	for i := range takeover {
		diffs[i] = takeover[i] - detect[i]
	}
	fmt.Fprintf(stdout, "  takeover − detection  median %.2fs  max %.2fs  (the recorders' own instants: Since of each adopted camera)\n", median(diffs), maxOf(diffs))
	fmt.Fprintf(stdout, "  shown by the API  median %.2fs  max %.2fs after the kill (polled every 20 ms)\n", median(shown), maxOf(shown))
	fmt.Fprintf(stdout, "  footage lost per camera (index, kill ± the outage)  median %.2fs  max %.2fs\n", median(lost), maxOf(lost))
	return nil
}

// lostAround is the footage of camera around a kill at killed that no
// live server holds, per the site-wide recordings API (the index).
func lostAround(ctx context.Context, srv *site.Server, camera string, killed time.Time) ([]api.Gap, error) {
	q := url.Values{"camera": {camera}, "from": {killed.Add(-4 * time.Second).UTC().Format(time.RFC3339Nano)},
		"to": {killed.Add(8 * time.Second).UTC().Format(time.RFC3339Nano)}}
	var rec api.Recordings
	if err := srv.GetJSON(ctx, "/api/v1/recordings?"+q.Encode(), &rec); err != nil {
		return nil, fmt.Errorf("recordings of %s: %w", camera, err)
	}
	return rec.Gaps, nil
}

func gapSum(gaps []api.Gap) time.Duration {
	var d time.Duration
	for _, g := range gaps {
		d += g.End.Sub(g.Start)
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// downEventTime is when srv logged that server went down (its
// server.down alarm) after since; false when it logged none, as a buddy
// that is not the site's announcer does not.
func downEventTime(ctx context.Context, srv *site.Server, server string, since time.Time) (time.Time, bool) {
	var resp struct {
		Events []events.Event `json:"events"`
	}
	if err := srv.GetJSON(ctx, "/api/v1/events?since="+url.QueryEscape(since.UTC().Format(time.RFC3339Nano)), &resp); err != nil {
		return time.Time{}, false
	}
	for _, e := range resp.Events {
		if e.Type == events.TypeServerDown && e.Condition == control.ConditionServerDown(server) {
			return e.Time, true
		}
	}
	return time.Time{}, false
}

// adopted counts the cameras of home that cams records as its own (not
// as a standby) and returns the latest of their Since.
func adopted(cams []api.CameraInfo, home string) (count int, last time.Time) {
	for _, c := range cams {
		if c.Home == home && c.State == recorder.StateRecording && c.Standby == "" {
			count++
			last = maxTime(last, c.Since)
		}
	}
	return count, last
}
