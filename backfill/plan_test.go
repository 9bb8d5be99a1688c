package backfill

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// seg is a closed segment of camera from a to b seconds after t0.
func seg(cam, by string, a, b float64) storage.Segment {
	home, _, _ := strings.Cut(cam, "/")
	return storage.Segment{Camera: cam, Home: home, RecordedBy: by, Bytes: 1000,
		Start: t0.Add(time.Duration(a * float64(time.Second))), End: t0.Add(time.Duration(b * float64(time.Second)))}
}

func (c Copy) String() string {
	return fmt.Sprintf("%s:%s@%s[%g-%g]", c.Peer, c.Segment.Camera, c.Segment.RecordedBy,
		c.Segment.Start.Sub(t0).Seconds(), c.Segment.End.Sub(t0).Seconds())
}

func TestPlan(t *testing.T) {
	open := seg("rec-a/cam1", "rec-b", 60, 70)
	open.Open = true
	empty := seg("rec-a/cam1", "rec-b", 60, 70)
	empty.Bytes = 0
	foreign := seg("rec-c/cam1", "rec-b", 0, 60)
	badHome := seg("rec-a/cam1", "rec-b", 0, 60)
	badHome.Home = "rec-c"
	tests := []struct {
		name     string
		own      []storage.Segment
		listings []Listing
		since    float64 // seconds after t0; 0 none
		avoid    []Source
		want     string
	}{
		{name: "nothing listed", own: []storage.Segment{seg("rec-a/cam1", "rec-a", 0, 60)}, want: ""},
		{
			name: "outage after failback: the buddy's footage between the home's is copied",
			own:  []storage.Segment{seg("rec-a/cam1", "rec-a", 0, 30), seg("rec-a/cam1", "rec-a", 63, 120)},
			listings: []Listing{{Peer: "rec-b", Segments: []storage.Segment{
				seg("rec-a/cam1", "rec-b", 32, 64), // make-before-break overlap at 63-64
			}}},
			want: "rec-b:rec-a/cam1@rec-b[32-64]",
		},
		{
			name: "already copied (same key) or covered by the home's own footage: skipped",
			own:  []storage.Segment{seg("rec-a/cam1", "rec-a", 0, 60), seg("rec-a/cam1", "rec-b", 60, 120), seg("rec-a/cam1", "rec-a", 120.05, 180)},
			listings: []Listing{{Peer: "rec-b", Segments: []storage.Segment{
				seg("rec-a/cam1", "rec-b", 60, 120),  // the copy is home
				seg("rec-a/cam1", "rec-b", 10, 50),   // a mirror of the home's own
				seg("rec-a/cam1", "rec-b", 100, 170), // covered by the copy and the home's, hole 50 ms
			}}},
			want: "",
		},
		{
			name: "a hole in the home's coverage longer than the tolerance is copied",
			own:  []storage.Segment{seg("rec-a/cam1", "rec-a", 0, 60), seg("rec-a/cam1", "rec-a", 60.5, 120)},
			listings: []Listing{{Peer: "rec-b", Segments: []storage.Segment{
				seg("rec-a/cam1", "rec-b", 0, 120),
			}}},
			want: "rec-b:rec-a/cam1@rec-b[0-120]",
		},
		{
			name: "open, empty, other homes' cameras, a wrong home field, before the horizon: skipped",
			listings: []Listing{{Peer: "rec-b", Segments: []storage.Segment{
				open, empty, foreign, badHome, seg("rec-a/cam1", "rec-b", 0, 10), seg("rec-a/cam1", "rec-b", 10, 30),
			}}},
			since: 10,
			want:  "rec-b:rec-a/cam1@rec-b[10-30]",
		},
		{
			name: "disk replaced: everything the peers hold, oldest first across cameras",
			listings: []Listing{
				{Peer: "rec-b", Segments: []storage.Segment{seg("rec-a/cam2", "rec-b", 0, 60), seg("rec-a/cam1", "rec-b", 60, 120)}},
				{Peer: "rec-c", Segments: []storage.Segment{seg("rec-a/cam1", "rec-c", 0, 60)}},
			},
			want: "rec-c:rec-a/cam1@rec-c[0-60] rec-b:rec-a/cam2@rec-b[0-60] rec-b:rec-a/cam1@rec-b[60-120]",
		},
		{
			name: "one segment held by two peers is copied once, from its recorder",
			listings: []Listing{
				{Peer: "rec-b", Segments: []storage.Segment{seg("rec-a/cam1", "rec-c", 0, 60)}},
				{Peer: "rec-c", Segments: []storage.Segment{seg("rec-a/cam1", "rec-c", 0, 60)}},
			},
			want: "rec-c:rec-a/cam1@rec-c[0-60]",
		},
		{
			name: "the recorder failed recently: the other holder",
			listings: []Listing{
				{Peer: "rec-b", Segments: []storage.Segment{seg("rec-a/cam1", "rec-c", 0, 60)}},
				{Peer: "rec-c", Segments: []storage.Segment{seg("rec-a/cam1", "rec-c", 0, 60)}},
			},
			avoid: []Source{{Peer: "rec-c", Key: KeyOf(seg("rec-a/cam1", "rec-c", 0, 60))}},
			want:  "rec-b:rec-a/cam1@rec-c[0-60]",
		},
		{
			name: "the only holder failed recently: nothing now",
			listings: []Listing{
				{Peer: "rec-b", Segments: []storage.Segment{seg("rec-a/cam1", "rec-b", 0, 60)}},
			},
			avoid: []Source{{Peer: "rec-b", Key: KeyOf(seg("rec-a/cam1", "rec-b", 0, 60))}},
			want:  "",
		},
		{
			name: "a partition recorded twice: the longer first, the one it covers skipped",
			listings: []Listing{
				{Peer: "rec-b", Segments: []storage.Segment{seg("rec-a/cam1", "rec-b", 0, 60)}},
				{Peer: "rec-c", Segments: []storage.Segment{seg("rec-a/cam1", "rec-c", 0, 30), seg("rec-a/cam1", "rec-c", 30, 90)}},
			},
			want: "rec-b:rec-a/cam1@rec-b[0-60] rec-c:rec-a/cam1@rec-c[30-90]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Inputs{Home: "rec-a", Own: map[string][]storage.Segment{}, Listings: tc.listings, Avoid: map[Source]bool{}}
			for _, s := range tc.own {
				in.Own[s.Camera] = append(in.Own[s.Camera], s)
			}
			if tc.since != 0 {
				in.Since = t0.Add(time.Duration(tc.since * float64(time.Second)))
			}
			for _, a := range tc.avoid {
				in.Avoid[a] = true
			}
			var got []string
			for _, c := range Plan(in) {
				got = append(got, c.String())
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("plan\n got %s\nwant %s", g, tc.want)
			}
			// Pure: the same inputs in another order give the same plan.
			rev := in
			rev.Listings = nil
			for i := len(in.Listings) - 1; i >= 0; i-- {
				l := in.Listings[i]
				var segs []storage.Segment
				for j := len(l.Segments) - 1; j >= 0; j-- {
					segs = append(segs, l.Segments[j])
				}
				rev.Listings = append(rev.Listings, Listing{Peer: l.Peer, Segments: segs})
			}
			var again []string
			for _, c := range Plan(rev) {
				again = append(again, c.String())
			}
			if strings.Join(again, " ") != strings.Join(got, " ") {
				t.Errorf("order of the listings changed the plan: %v vs %v", again, got)
			}
		})
	}
}
