package node

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/testfootage"
)

// TestBackfillWiring: rec-b holds footage of rec-a's camera; rec-a copies
// it into its own index (recorded_by rec-b) and says so in its API, its
// cameras answer (for every page), its event log and /metrics.
func TestBackfillWiring(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	cluster := func(self, peer int, buddy string) string {
		return fmt.Sprintf("gossip = \"127.0.0.1:%d\"\n[cluster]\ninsecure = true\njoin = [\"127.0.0.1:%d\"]\nkeepalive = \"200ms\"\nfailover_after = \"800ms\"\n[failover]\nbuddies = [%q]\n", self, peer, buddy)
	}
	b, _ := startNodeAt(t, "rec-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)), cluster(pb, pa, "rec-a"))
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	testfootage.Write(t, "..", b.store, "rec-a/lobby", start, 6*time.Second)
	a, _ := startNodeAt(t, "rec-a", fmt.Sprintf("127.0.0.1:%d", freePort(t)), cluster(pa, pb, "rec-b")+"[[camera]]\nname = \"lobby\"\nurl = \"rtsp://127.0.0.1:1/none\"\n")

	waitFor(t, 30*time.Second, "rec-a copies rec-b's footage of its camera", func() bool {
		segs, err := a.store.Segments("rec-a/lobby", start.Add(-time.Minute), start.Add(time.Minute))
		return err == nil && len(segs) == 1 && segs[0].RecordedBy == "rec-b" && segs[0].Home == "rec-a"
	})
	var bf api.Backfill
	waitFor(t, 10*time.Second, "the copy is reported", func() bool {
		getJSON(t, a, "/api/v1/backfill", &bf)
		return bf.CopiedSegments == 1 && len(bf.Cameras) == 0
	})
	if bf.Server != "rec-a" || bf.RateMbps != 0 || !bf.RateAuto || bf.RateChosen != "loopback" || bf.CopiedBytes == 0 { // "auto" over loopback: unlimited
		t.Errorf("backfill status %+v", bf)
	}
	waitFor(t, 10*time.Second, "backfill.completed in the log", func() bool {
		var ev struct {
			Events []struct {
				Type    string   `json:"type"`
				Cameras []string `json:"cameras"`
				Text    string   `json:"text"`
			} `json:"events"`
		}
		getJSON(t, a, "/api/v1/events?limit=50", &ev)
		for _, e := range ev.Events {
			if e.Type == "backfill.completed" && strings.Join(e.Cameras, ",") == "rec-a/lobby" && strings.Contains(e.Text, "from rec-b") {
				return true
			}
		}
		return false
	})
	resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fams, err := (&expfmt.TextParser{}).TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	if f := fams["buddyrec_backfill_copied_segments_total"]; f == nil || f.Metric[0].GetCounter().GetValue() != 1 {
		t.Errorf("/metrics: buddyrec_backfill_copied_segments_total = %v, want 1", f)
	}
	if fams["buddyrec_backfill_refused_total"] == nil || fams["buddyrec_backfill_copied_bytes_total"] == nil {
		t.Error("/metrics lacks the backfill counters")
	}
}
