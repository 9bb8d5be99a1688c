package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testfootage"
	"github.com/buddyrec/buddyrec/storage"
)

// benchBackfill measures archive consolidation: a buddy holds an outage's
// footage of the home's cameras (synthesized from the test clip straight
// into its storage, as if it had adopted them), and the home, restarted
// and recording its cameras live again, copies it back. It reports the
// copy rate, the seconds until the home holds all of it, and the frames
// the home's recorder dropped meanwhile.
func benchBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench backfill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("cameras", 20, "cameras of the home (each recorded live during the copy)")
	outage := fs.Duration("outage", 10*time.Minute, "footage per camera the buddy recorded")
	mbps := fs.String("mbps", "auto", "[storage] backfill_mbps of the home: Mbit/s (0: unlimited) or \"auto\" (the default; unlimited over loopback; 500 is what it chooses on a gigabit link)")
	clips := fs.String("clips", "testdata", "folder with the camera clips")
	if err := fs.Parse(args); err != nil {
		return err
	}
	setting := strconv.Quote(*mbps)
	if *mbps != "auto" {
		v, err := strconv.ParseFloat(*mbps, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("bench backfill: -mbps %q: want a non-negative number or \"auto\"", *mbps)
		}
		setting = strconv.FormatFloat(v, 'f', -1, 64)
	}
	env, err := newBenchEnv(ctx, *n, *clips, "h264", false)
	if err != nil {
		return err
	}
	defer env.Close()
	a := site.ServerSpec{Name: "rec-a", Buddies: []string{"rec-b"}, FailbackAfter: "3s", Cameras: env.cameras(),
		Storage: "backfill_mbps = " + setting + "\n"}
	b := site.ServerSpec{Name: "rec-b", Buddies: []string{"rec-a"}}
	s, err := site.New(site.Spec{Dir: env.dir, Bin: env.bin, Servers: []site.ServerSpec{a, b}, Segment: "60s", Part: "1s"})
	if err != nil {
		return err
	}
	ra, rb := s.Server("rec-a"), s.Server("rec-b")

	// The outage, as the buddy recorded it: ended a minute ago.
	fmt.Fprintf(stdout, "synthesizing %s of footage of %d cameras on rec-b ...\n", *outage, *n)
	st, err := storage.Open(storage.Options{Dir: rb.DataDir, Server: "rec-b", Segment: time.Minute})
	if err != nil {
		return err
	}
	began := time.Now().Add(-*outage - time.Minute).Truncate(time.Second)
	for i := range *n {
		if err := testfootage.Synthesize(filepath.Dir(filepath.Clean(*clips)), st, fmt.Sprintf("rec-a/cam%d", i+1), began, *outage); err != nil {
			st.Close()
			return err
		}
	}
	var segments int
	var bytes int64
	for i := range *n {
		segs, err := st.Segments(fmt.Sprintf("rec-a/cam%d", i+1), began.Add(-time.Minute), time.Now())
		if err != nil {
			st.Close()
			return err
		}
		segments += len(segs)
		for _, s := range segs {
			bytes += s.Bytes
		}
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rec-b holds %d segments, %.0f MB; starting rec-b, then rec-a (backfill_mbps = %s) ...\n", segments, float64(bytes)/1e6, setting)

	if err := rb.Start(); err != nil {
		return err
	}
	defer s.StopAll()
	time.Sleep(time.Second)
	start := time.Now()
	if err := ra.Start(); err != nil {
		return err
	}
	var first, whole time.Time
	var last api.Backfill
	err = waitFor(ctx, 30*time.Minute, func() bool {
		var bf api.Backfill
		if ra.GetJSON(ctx, "/api/v1/backfill", &bf) != nil {
			return false
		}
		last = bf
		if first.IsZero() && (bf.Copying != nil || bf.CopiedSegments > 0) {
			first = time.Now()
		}
		if bf.CopiedSegments >= segments && len(bf.Cameras) == 0 && bf.Copying == nil {
			whole = time.Now()
			return true
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("the home did not become whole: copied %d of %d segments: %w", last.CopiedSegments, segments, err)
	}
	camsA, err := ra.Cameras(ctx)
	if err != nil {
		return err
	}
	var dropped, received uint64
	for _, c := range camsA {
		dropped += c.FramesDropped
		received += c.FramesReceived
	}
	copySecs := whole.Sub(first).Seconds()
	fmt.Fprintf(stdout, "backfill of a %s outage of %d cameras (%d segments, %.0f MB), backfill_mbps = %s:\n", *outage, *n, segments, float64(last.CopiedBytes)/1e6, setting)
	if last.RateAuto {
		fmt.Fprintf(stdout, "  limit chosen         %s: %s\n", last.RateChosen, mbpsText(last.RateMbps))
	}
	fmt.Fprintf(stdout, "  copy rate            %.1f MB/s (%.0f Mbit/s), first copy to whole\n", float64(last.CopiedBytes)/1e6/copySecs, float64(last.CopiedBytes)*8/1e6/copySecs)
	fmt.Fprintf(stdout, "  home whole after     %.1f s from its start (%.1f s copying)\n", whole.Sub(start).Seconds(), copySecs)
	fmt.Fprintf(stdout, "  refused copies       %d\n", last.Refused)
	fmt.Fprintf(stdout, "  frames dropped       %d of %d received by the home's recorder meanwhile\n", dropped, received)
	return nil
}

// mbpsText is a rate limit as the README writes it.
func mbpsText(mbps float64) string {
	if mbps == 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(mbps, 'f', -1, 64) + " Mbit/s"
}
