package export

import (
	"reflect"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

func TestSpans(t *testing.T) {
	at := func(s float64) time.Time { return testEpoch.Add(time.Duration(s * float64(time.Second))) }
	seg := func(held, recorded string, from, to float64) Held {
		return Held{Segment: storage.Segment{Start: at(from), End: at(to), RecordedBy: recorded}, Server: held}
	}
	type span struct {
		from, to float64
		by       string
		held     []string
	}
	for _, tc := range []struct {
		name  string
		held  []Held
		spans []span
		gaps  [][2]float64
	}{
		{"one recorder, segments joined", []Held{seg("rec-a", "rec-a", 0, 2), seg("rec-a", "rec-a", 2.01, 4)},
			[]span{{0, 4, "rec-a", []string{"rec-a"}}}, [][2]float64{{4, 10}}},
		{"failover: a hole, then the buddy", []Held{seg("rec-a", "rec-a", 0, 3), seg("rec-b", "rec-b", 4, 8), seg("rec-a", "rec-a", 7.5, 10)},
			[]span{{0, 3, "rec-a", []string{"rec-a"}}, {4, 8, "rec-b", []string{"rec-b"}}, {7.5, 10, "rec-a", []string{"rec-a"}}}, [][2]float64{{3, 4}}},
		{"a copy on another server is one span", []Held{seg("rec-a", "rec-b", 1, 5), seg("rec-b", "rec-b", 1, 5)},
			[]span{{1, 5, "rec-b", []string{"rec-a", "rec-b"}}}, [][2]float64{{0, 1}, {5, 10}}},
		{"clipped to the range", []Held{seg("rec-a", "rec-a", -5, 20)},
			[]span{{0, 10, "rec-a", []string{"rec-a"}}}, nil},
		{"nothing", nil, nil, [][2]float64{{0, 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spans, gaps := Spans(tc.held, at(0), at(10))
			var got []span
			for _, s := range spans {
				got = append(got, span{s.Start.Sub(testEpoch).Seconds(), s.End.Sub(testEpoch).Seconds(), s.RecordedBy, s.HeldBy})
			}
			if !reflect.DeepEqual(got, tc.spans) {
				t.Errorf("spans = %v, want %v", got, tc.spans)
			}
			var gotGaps [][2]float64
			for _, g := range gaps {
				gotGaps = append(gotGaps, [2]float64{g.Start.Sub(testEpoch).Seconds(), g.End.Sub(testEpoch).Seconds()})
			}
			if !reflect.DeepEqual(gotGaps, tc.gaps) {
				t.Errorf("gaps = %v, want %v", gotGaps, tc.gaps)
			}
		})
	}
}
