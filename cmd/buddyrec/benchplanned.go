package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/recorder"
)

// benchFrame is the frame interval of camsim's clips (25 fps): a hole in
// the footage of d loses d/benchFrame frames.
const benchFrame = 40 * time.Millisecond

// benchPlanned measures planned handovers (`bench failover -planned`):
// per run it drains rec-a through its API (as `buddyrec drain` does),
// waits until rec-b records every camera and rec-a none, then undrains
// and waits for the cameras to come back. For each move it reports the
// time until every camera records on its new server, and the frames lost
// per camera: the holes in the site's footage (the export plan rec-b
// serves, from both servers' indexes) across the move.
func benchPlanned(ctx context.Context, stdout io.Writer, ra, rb *site.Server, n, runs int) error {
	cfgA, err := config.Load(ra.Config)
	if err != nil {
		return err
	}
	a, err := newServerAPI(cfgA)
	if err != nil {
		return err
	}
	var drainT, undrainT []float64
	var drainLost, undrainLost []float64 // frames lost per camera, every camera of every run
	for run := 1; run <= runs; run++ {
		if err := waitRecording(ctx, ra, n, 60*time.Second); err != nil {
			return err
		}
		if err := waitFor(ctx, 60*time.Second, func() bool {
			rec, err := rb.Recording(ctx)
			return err == nil && len(rec) == 0
		}); err != nil {
			return fmt.Errorf("run %d: rec-b did not settle: %w", run, err)
		}
		time.Sleep(2 * time.Second)
		for _, move := range []struct {
			path     string
			from, to *site.Server
			times    *[]float64
			lost     *[]float64
		}{
			{"/api/v1/drain", ra, rb, &drainT, &drainLost},
			{"/api/v1/undrain", rb, ra, &undrainT, &undrainLost},
		} {
			start := time.Now()
			if err := a.postJSON(ctx, move.path, nil, nil); err != nil {
				return fmt.Errorf("run %d: POST %s: %w", run, move.path, err)
			}
			var recorded time.Time
			if err := waitFor(ctx, 90*time.Second, func() bool {
				if recorded.IsZero() && countRecording(ctx, move.to, "rec-a") == n {
					recorded = time.Now()
				}
				return !recorded.IsZero() && countRecording(ctx, move.from, "rec-a") == 0
			}); err != nil {
				return fmt.Errorf("run %d: %s did not complete: %w", run, move.path, err)
			}
			end := time.Now()
			took := recorded.Sub(start).Seconds()
			*move.times = append(*move.times, took)
			time.Sleep(3 * time.Second) // the new recorder's footage after the move is durable
			runWorst := 0.0
			for i := 1; i <= n; i++ {
				id := fmt.Sprintf("rec-a/cam%d", i)
				lost, gaps, err := framesLost(ctx, rb, id, start.Add(-2*time.Second), end.Add(time.Second))
				if err != nil {
					return fmt.Errorf("run %d: %w", run, err)
				}
				for _, g := range gaps {
					fmt.Fprintf(stdout, "  %s: hole of %v from %+.2fs to %+.2fs after the %s\n", id, g.End.Sub(g.Start).Round(time.Millisecond),
						g.Start.Sub(start).Seconds(), g.End.Sub(start).Seconds(), move.path)
				}
				*move.lost = append(*move.lost, lost)
				runWorst = max(runWorst, lost)
			}
			fmt.Fprintf(stdout, "run %d: %s: all %d cameras recording on %s after %.2fs, handover done after %.2fs, frames lost: max %.0f per camera\n",
				run, move.path, n, move.to.Name, took, end.Sub(start).Seconds(), runWorst)
		}
	}
	fmt.Fprintf(stdout, "\nplanned handover of %d cameras over %d runs (drain, then undrain; make-before-break):\n", n, runs)
	fmt.Fprintf(stdout, "  drain    every camera recording on rec-b   median %.2fs  max %.2fs; frames lost per camera: total %.0f, max %.0f\n",
		median(drainT), maxOf(drainT), sum(drainLost), maxOf(drainLost))
	fmt.Fprintf(stdout, "  undrain  every camera recording on rec-a   median %.2fs  max %.2fs; frames lost per camera: total %.0f, max %.0f\n",
		median(undrainT), maxOf(undrainT), sum(undrainLost), maxOf(undrainLost))
	return nil
}

// countRecording counts the cameras of home srv reports recording.
func countRecording(ctx context.Context, srv *site.Server, home string) int {
	cams, err := srv.Cameras(ctx)
	if err != nil {
		return -1
	}
	count := 0
	for _, c := range cams {
		if c.Home == home && c.State == recorder.StateRecording {
			count++
		}
	}
	return count
}

// framesLost is how many frames of camera the site's footage misses over
// [from, to): the holes of the export plan srv gives, in frames.
func framesLost(ctx context.Context, srv *site.Server, camera string, from, to time.Time) (float64, []export.Gap, error) {
	q := url.Values{"camera": {camera}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	var plan export.Plan
	if err := srv.GetJSON(ctx, "/api/v1/export/plan?"+q.Encode(), &plan); err != nil {
		return 0, nil, fmt.Errorf("export plan of %s: %w", camera, err)
	}
	var hole time.Duration
	for _, g := range plan.Gaps {
		hole += g.End.Sub(g.Start)
	}
	return float64((hole + benchFrame/2) / benchFrame), plan.Gaps, nil
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}
