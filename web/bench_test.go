package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// BenchmarkPage renders the status page of 16 cameras at each zoom, the
// worst case for the timelines: every camera drops out for 3 s every
// minute for the whole week (10 080 spans each), so every zoom has holes
// to mark. It reports the page's size, which the refresh sends every 5 s.
func BenchmarkPage(b *testing.B) {
	const cams = 16
	src := &fakeSource{self: "rec-a", cameras: api.Cameras{Server: "rec-a"}, spans: map[string][]api.Span{}}
	var inv []api.HomeCamera
	for c := range cams {
		id := fmt.Sprintf("rec-a/cam%02d", c)
		inv = append(inv, api.HomeCamera{ID: id, PlannedOn: "rec-a"})
		src.cameras.Cameras = append(src.cameras.Cameras, api.CameraInfo{ID: id, Home: "rec-a", RecordedBy: "rec-a", State: "recording", Codec: "H264+AAC"})
		for i := range 7 * 24 * 60 {
			st := testNow.Add(-7 * 24 * time.Hour).Add(time.Duration(i) * time.Minute)
			src.spans[id] = append(src.spans[id], api.Span{Start: st, End: st.Add(57 * time.Second), RecordedBy: "rec-a"})
		}
	}
	src.cluster = []api.ServerInfo{{Name: "rec-a", State: "alive", Inventory: inv}}
	h := NewHandler(Options{Source: src, Now: func() time.Time { return testNow }})
	for _, z := range Zooms {
		b.Run(z.Name, func(b *testing.B) {
			var size int
			for range b.N {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/?range="+z.Name, nil))
				if rr.Code != http.StatusOK {
					b.Fatal(rr.Code, rr.Body.String())
				}
				size = rr.Body.Len()
			}
			b.ReportMetric(float64(size)/1e3, "kB/page")
		})
	}
}
