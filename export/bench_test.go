package export

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

// BenchmarkExport writes an hour of footage (the committed clip looped,
// default 60s segments and 1s parts; BUDDYREC_BENCH_EXPORT_MINUTES changes
// the length) and exports all of it over loopback HTTP from a warm page
// cache. It reports MB/s and ttfb-ms, the time from sending the request to
// the first byte of video.
//
//	go test -run '^$' -bench Export -benchtime 5x ./export/
func BenchmarkExport(b *testing.B) {
	minutes := 60
	if v, err := strconv.Atoi(os.Getenv("BUDDYREC_BENCH_EXPORT_MINUTES")); err == nil && v > 0 {
		minutes = v
	}
	length := time.Duration(minutes) * time.Minute
	c := loadClip(b, "h264-aac.ts", 1)
	st, err := storage.Open(storage.Options{Dir: b.TempDir(), Server: "rec-a"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	w, err := st.Begin(storage.Stream{Camera: testCamera, Home: "rec-a", Tracks: c.tracks})
	if err != nil {
		b.Fatal(err)
	}
	loop := c.samples[len(c.samples)-1].Arrival.Sub(testEpoch) + 40*time.Millisecond
	written := time.Now()
	for l := time.Duration(0); l < length; l += loop {
		for _, s := range c.samples {
			s.Arrival = s.Arrival.Add(l)
			s.DTS += durationToTicks(l, int64(c.tracks[s.Track].TimeScale))
			if err := w.Write(s); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %v of footage in %v", length, time.Since(written).Round(time.Millisecond))
	srv := serve(b, NewHandler(Options{Store: st, Self: "rec-a"}))
	url := exportURL(srv.URL, RouteExport, testEpoch, testEpoch.Add(length))

	b.Run("hour", func(b *testing.B) {
		var total int64
		var ttfb time.Duration
		for range b.N {
			start := time.Now()
			resp, err := http.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			var one [1]byte
			if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
				b.Fatal(err)
			}
			ttfb += time.Since(start)
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			total += n + 1
		}
		b.SetBytes(total / int64(b.N))
		b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ttfb-ms")
	})
}
