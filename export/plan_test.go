package export

import (
	"reflect"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

func TestMergeTimeline(t *testing.T) {
	at := func(s float64) time.Time { return testEpoch.Add(time.Duration(s * float64(time.Second))) }
	seg := func(server string, from, to float64) candidate {
		return candidate{seg: storage.Segment{Start: at(from), End: at(to)}, server: server}
	}
	type want struct {
		server   string
		mode     int
		from, to float64
		afterGap bool
	}
	const tol = 80 * time.Millisecond // two frames at 25 fps
	for _, tc := range []struct {
		name     string
		cands    []candidate
		from, to float64
		pieces   []want
		gaps     [][2]float64
	}{
		{"contiguous local", []candidate{seg("", 0, 2), seg("", 2.004, 4), seg("", 3.999, 6)}, 1, 5,
			[]want{{"", startBefore, 1, 2, false}, {"", startAtBeginning, 2.004, 4, false}, {"", startAtBeginning, 3.999, 5, false}}, nil},
		{"hole reported", []candidate{seg("", 0, 2), seg("", 6, 8)}, 0, 8,
			[]want{{"", startAtBeginning, 0, 2, false}, {"", startAtBeginning, 6, 8, true}}, [][2]float64{{2, 6}}},
		{"short hole reported", []candidate{seg("", 0, 2), seg("", 2.5, 8)}, 0, 8,
			[]want{{"", startAtBeginning, 0, 2, false}, {"", startAtBeginning, 2.5, 8, true}}, [][2]float64{{2, 2.5}}},
		{"jitter tolerated", []candidate{seg("", 0, 2), seg("", 2.0625, 8)}, 0, 8,
			[]want{{"", startAtBeginning, 0, 2, false}, {"", startAtBeginning, 2.0625, 8, false}}, nil},
		{"nothing at the ends", []candidate{seg("", 3, 5)}, 0, 10,
			[]want{{"", startAtBeginning, 3, 5, false}}, [][2]float64{{0, 3}, {5, 10}}},
		{"buddy fills the outage", []candidate{seg("", 0, 4), seg("rec-b", 4.01, 8), seg("", 8.02, 12)}, 0, 12,
			[]want{{"", startAtBeginning, 0, 4, false}, {"rec-b", startAtBeginning, 4.01, 8, false}, {"", startAtBeginning, 8.02, 12, false}}, nil},
		{"local preferred over duplicate", []candidate{seg("rec-b", 0, 6), seg("", 0, 4), seg("", 4, 8)}, 0, 8,
			[]want{{"", startAtBeginning, 0, 4, false}, {"", startAtBeginning, 4, 8, false}}, nil},
		{"partition overlap starts at a keyframe before the cursor", []candidate{seg("", 0, 5), seg("rec-b", 3, 9)}, 0, 9,
			[]want{{"", startAtBeginning, 0, 5, false}, {"rec-b", startBefore, 5, 9, false}}, nil},
		{"failover then make-before-break failback", []candidate{seg("", 0, 3), seg("rec-b", 5, 8.6), seg("", 8, 14)}, 0, 14,
			[]want{{"", startAtBeginning, 0, 3, false}, {"rec-b", startAtBeginning, 5, 8.6, true}, {"", startBefore, 8.6, 14, false}},
			[][2]float64{{3, 5}}},
		{"no footage", nil, 0, 10, nil, [][2]float64{{0, 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pieces, gaps := mergeTimeline(tc.cands, at(tc.from), at(tc.to), tol)
			var got []want
			for _, p := range pieces {
				got = append(got, want{p.server, p.mode, p.from.Sub(testEpoch).Seconds(), p.to.Sub(testEpoch).Seconds(), p.afterGap})
			}
			if !reflect.DeepEqual(got, tc.pieces) {
				t.Errorf("pieces = %v, want %v", got, tc.pieces)
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

// TestFragmentGarbage feeds every prefix and some corruptions of a real
// fragment to the parser: errors, never a panic or a read outside it.
func TestFragmentGarbage(t *testing.T) {
	c := loadClip(t, "h264-aac.ts", 1)
	st := openStore(t, "rec-a", 500*time.Millisecond)
	record(t, st, c.tracks, c.window(0, 2*time.Second, 0))
	segs, err := st.Segments(testCamera, testEpoch, testEpoch.Add(time.Minute))
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	data := readFile(t, st.SegmentPath(segs[0]))
	_, off, err := readInit(bytesReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var f fragment
	end, err := readFragment(bytesReader(data), off, int64(len(data)), &f, false)
	if err != nil || len(f.trafs) == 0 {
		t.Fatalf("good fragment: %v", err)
	}
	frag := data[off:end]
	for n := 0; n < len(frag); n += 7 {
		readFragment(bytesReader(frag[:n]), 0, int64(n), &f, false) //nolint:errcheck // must not panic
	}
	for i := 0; i < len(frag) && i < 600; i++ {
		bad := append([]byte(nil), frag...)
		bad[i] ^= 0xff
		readFragment(bytesReader(bad), 0, int64(len(bad)), &f, false) //nolint:errcheck // must not panic
	}
}
