package export

import (
	"reflect"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

// TestMergeTimelinePrefersHome: where a mirror (or an adopter) and the
// home both hold a moment, the export reads the home's own recording,
// wherever the export runs; it falls back to the mirror only where the
// home has nothing, and returns to the home's copy as soon as it has one.
func TestMergeTimelinePrefersHome(t *testing.T) {
	at := func(s float64) time.Time { return testEpoch.Add(time.Duration(s * float64(time.Second))) }
	seg := func(server, recordedBy string, from, to float64) candidate {
		return candidate{seg: storage.Segment{Start: at(from), End: at(to), Home: "rec-a", RecordedBy: recordedBy}, server: server}
	}
	type want struct {
		server, recordedBy string
		mode               int
		from, to           float64
	}
	const tol = 80 * time.Millisecond
	for _, tc := range []struct {
		name   string
		cands  []candidate
		pieces []want
		gaps   int
	}{
		{"exported on the home: mirror fills the home's outage only", []candidate{
			seg("rec-b", "rec-b", 0, 12), seg("", "rec-a", 0, 4), seg("", "rec-a", 6, 12)},
			[]want{{"", "rec-a", startAtBeginning, 0, 4}, {"rec-b", "rec-b", startBefore, 4, 6.08}, {"", "rec-a", startAtBeginning, 6, 12}}, 0},
		{"exported on the mirror: the home's copy first", []candidate{
			seg("", "rec-b", 0, 12), seg("rec-a", "rec-a", 0, 12)},
			[]want{{"rec-a", "rec-a", startAtBeginning, 0, 12}}, 0},
		{"home's disk lost: the mirror alone", []candidate{seg("", "rec-b", 0, 6), seg("", "rec-b", 6.01, 12)},
			[]want{{"", "rec-b", startAtBeginning, 0, 6}, {"", "rec-b", startAtBeginning, 6.01, 12}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pieces, gaps := mergeTimeline(tc.cands, at(0), at(12), tol)
			var got []want
			for _, p := range pieces {
				got = append(got, want{p.server, p.seg.RecordedBy, p.mode, p.from.Sub(testEpoch).Seconds(), p.to.Sub(testEpoch).Seconds()})
			}
			if !reflect.DeepEqual(got, tc.pieces) {
				t.Errorf("pieces = %v, want %v", got, tc.pieces)
			}
			if len(gaps) != tc.gaps {
				t.Errorf("gaps = %v", gaps)
			}
		})
	}
}
