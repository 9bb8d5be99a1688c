package storage

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// seed puts index entries directly: (start s, end s, recorded_by).
func seed(t *testing.T, st *Store, camera string, segs [][3]any) {
	t.Helper()
	err := st.db.Update(func(tx *bolt.Tx) error {
		for i, s := range segs {
			start := testEpoch.Add(time.Duration(s[0].(float64) * float64(time.Second)))
			end := testEpoch.Add(time.Duration(s[1].(float64) * float64(time.Second)))
			e := entry{File: fmt.Sprintf("x/%d.mp4", i), Start: start.UnixNano(), End: end.UnixNano(), RecordedBy: s[2].(string)}
			if err := putEntry(tx, camera, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func at(s float64) time.Time { return testEpoch.Add(time.Duration(s * float64(time.Second))) }

func TestSpans(t *testing.T) {
	cases := []struct {
		name     string
		segs     [][3]any
		from, to float64
		want     string
	}{
		{"contiguous merge", [][3]any{{0.0, 60.0, "a"}, {60.0, 120.0, "a"}, {120.5, 180.0, "a"}}, -10, 1000,
			"[0-180 a]"},
		{"gap over 1.5 s splits", [][3]any{{0.0, 60.0, "a"}, {61.5, 120.0, "a"}, {121.6, 180.0, "a"}}, -10, 1000,
			"[0-120 a 121.6-180 a]"},
		{"recorded_by change splits", [][3]any{{0.0, 60.0, "a"}, {60.0, 120.0, "b"}, {120.0, 180.0, "b"}}, -10, 1000,
			"[0-60 a 60-180 b]"},
		{"clipped to range", [][3]any{{0.0, 60.0, "a"}, {60.0, 120.0, "a"}}, 30, 90,
			"[30-90 a]"},
		{"range in a gap", [][3]any{{0.0, 60.0, "a"}, {100.0, 120.0, "a"}}, 70, 90,
			"[]"},
		{"range touching ends", [][3]any{{0.0, 60.0, "a"}, {100.0, 120.0, "a"}}, 60, 100,
			"[]"},
		{"long segment before range", [][3]any{{0.0, 600.0, "a"}, {600.0, 601.0, "a"}}, 300, 300.5,
			"[300-300.5 a]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openTestStore(t, t.TempDir(), nil)
			seed(t, st, "rec-a/lobby", tc.segs)
			spans, err := st.Spans("rec-a/lobby", at(tc.from), at(tc.to))
			if err != nil {
				t.Fatal(err)
			}
			got := "["
			for i, s := range spans {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%v-%v %s", s.Start.Sub(testEpoch).Seconds(), s.End.Sub(testEpoch).Seconds(), s.RecordedBy)
			}
			got += "]"
			if got != tc.want {
				t.Errorf("spans %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSegmentsAndCameras(t *testing.T) {
	st := openTestStore(t, t.TempDir(), nil)
	seed(t, st, "rec-a/lobby", [][3]any{{0.0, 60.0, "a"}, {60.0, 120.0, "a"}, {120.0, 180.0, "a"}})
	seed(t, st, "rec-b/door", [][3]any{{0.0, 60.0, "b"}})
	cams, err := st.Cameras()
	if err != nil || fmt.Sprint(cams) != "[rec-a/lobby rec-b/door]" {
		t.Errorf("cameras %v %v", cams, err)
	}
	segs, _ := st.Segments("rec-a/lobby", at(59), at(61))
	if len(segs) != 2 || !segs[0].Start.Equal(at(0)) || !segs[1].Start.Equal(at(60)) {
		t.Errorf("segments over 59-61: %+v", segs)
	}
	segs, _ = st.Segments("rec-a/lobby", at(180), at(200))
	if len(segs) != 0 {
		t.Errorf("segments after the end: %+v", segs)
	}
	if segs, err := st.Segments("nobody/x", at(0), at(100)); err != nil || len(segs) != 0 {
		t.Errorf("unknown camera: %v %v", segs, err)
	}
}
