package node

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testfootage"
)

func freePort(t *testing.T) int {
	t.Helper()
	p, err := site.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecordingsSiteWide: rec-b holds footage of rec-a's camera (it adopted
// it); rec-a's /api/v1/recordings answers with it. Once rec-a is gone,
// rec-b answers with what it holds and says the rest is on rec-a,
// unreachable, before the time rec-a went down.
func TestRecordingsSiteWide(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	cluster := func(self, peer int, buddy string) string {
		return fmt.Sprintf("gossip = \"127.0.0.1:%d\"\n[cluster]\ninsecure = true\njoin = [\"127.0.0.1:%d\"]\nkeepalive = \"200ms\"\nfailover_after = \"800ms\"\n[failover]\nbuddies = [%q]\n", self, peer, buddy)
	}
	a, stopA := startNodeAt(t, "rec-a", fmt.Sprintf("127.0.0.1:%d", freePort(t)), cluster(pa, pb, "rec-b")+"[[camera]]\nname = \"lobby\"\nurl = \"rtsp://127.0.0.1:1/none\"\n")
	b, _ := startNodeAt(t, "rec-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)), cluster(pb, pa, "rec-a"))
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	testfootage.Write(t, "..", b.store, "rec-a/lobby", start, 6*time.Second)
	waitFor(t, 20*time.Second, "rec-a and rec-b see each other", func() bool {
		return len(a.peers()) == 1 && len(b.peers()) == 1
	})

	q := "/api/v1/recordings?" + url.Values{"camera": {"rec-a/lobby"},
		"from": {start.Add(-10 * time.Second).Format(time.RFC3339Nano)}, "to": {start.Add(30 * time.Second).Format(time.RFC3339Nano)}}.Encode()
	var rec api.Recordings
	if code := getJSON(t, a, q, &rec); code != 200 {
		t.Fatalf("recordings on rec-a: %d", code)
	}
	if len(rec.Spans) != 1 || rec.Spans[0].RecordedBy != "rec-b" || len(rec.Spans[0].HeldBy) != 1 || rec.Spans[0].HeldBy[0] != "rec-b" ||
		rec.Spans[0].Start.Sub(start).Abs() > 50*time.Millisecond || rec.Spans[0].End.Sub(start.Add(6*time.Second)).Abs() > 100*time.Millisecond {
		t.Errorf("rec-a answers spans %+v, want rec-b's 6 s from %v", rec.Spans, start)
	}
	if len(rec.Gaps) != 2 || len(rec.Unreachable) != 0 {
		t.Errorf("gaps %+v unreachable %+v, want the two ends of the range and nothing unreachable", rec.Gaps, rec.Unreachable)
	}

	stopA()
	downAt := time.Now()
	waitFor(t, 20*time.Second, "rec-b sees rec-a down", func() bool { return len(b.peers()) == 0 })
	rec = api.Recordings{}
	if code := getJSON(t, b, q, &rec); code != 200 {
		t.Fatalf("recordings on rec-b: %d", code)
	}
	if len(rec.Spans) != 1 || rec.Spans[0].RecordedBy != "rec-b" {
		t.Errorf("rec-b answers spans %+v, want its own adopted footage", rec.Spans)
	}
	if len(rec.Unreachable) != 1 || rec.Unreachable[0].Server != "rec-a" || rec.Unreachable[0].Before == nil ||
		rec.Unreachable[0].Before.Sub(downAt).Abs() > 15*time.Second {
		t.Errorf("unreachable = %+v, want rec-a before about %v", rec.Unreachable, downAt)
	}
}
