package worker

import (
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
)

// nextRegroupLocked moves back only cameras a split left alone that
// proved stable, into stable groups with room, never a culprit and never
// in with one.
func TestNextRegroup(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	long, short := now.Add(-time.Hour), now.Add(-30*time.Second) // RegroupAfter is 1 min
	type g struct {
		cams     []string
		isolated bool
		created  time.Time
		crashed  time.Time // zero: never
		culprit  bool
		failed   time.Time // a move out last gave up
		noProc   bool
	}
	for _, tc := range []struct {
		name      string
		perWorker int
		groups    []g
		want      string // "cam->slot", or "" for no move
	}{
		{"stable loners of a split join the fullest stable group with room", 3, []g{
			{cams: []string{"c4", "c5"}, created: long},
			{cams: []string{"c1"}, isolated: true, created: long},
			{cams: []string{"c3"}, isolated: true, created: long, culprit: true, crashed: now.Add(-time.Second)},
		}, "c1->1"},
		{"two stable loners make a shared group", 3, []g{
			{cams: []string{"c1"}, isolated: true, created: long},
			{cams: []string{"c2"}, isolated: true, created: long},
		}, "c1->2"},
		{"a split too recent", 3, []g{
			{cams: []string{"c4"}, created: long},
			{cams: []string{"c1"}, isolated: true, created: short},
		}, ""},
		{"a loner that crashed lately", 3, []g{
			{cams: []string{"c4"}, created: long},
			{cams: []string{"c1"}, isolated: true, created: long, crashed: short},
		}, ""},
		{"a loner that crashed long ago", 3, []g{
			{cams: []string{"c4"}, created: long},
			{cams: []string{"c1"}, isolated: true, created: long, crashed: long},
		}, "c1->1"},
		{"the culprit stays alone, and nobody moves in with it", 3, []g{
			{cams: []string{"c3"}, isolated: true, created: long, culprit: true},
			{cams: []string{"c1"}, isolated: true, created: long},
		}, ""},
		{"no room anywhere", 2, []g{
			{cams: []string{"c4", "c5"}, created: long},
			{cams: []string{"c1"}, isolated: true, created: long},
		}, ""},
		{"a target whose worker crashed lately", 3, []g{
			{cams: []string{"c4"}, created: long, crashed: short},
			{cams: []string{"c1"}, isolated: true, created: long},
		}, ""},
		{"a move that gave up lately is not tried again yet", 3, []g{
			{cams: []string{"c4"}, created: long},
			{cams: []string{"c1"}, isolated: true, created: long, failed: short},
		}, ""},
		{"a target without a running worker", 3, []g{
			{cams: []string{"c4"}, created: long, noProc: true},
			{cams: []string{"c1"}, isolated: true, created: long},
		}, ""},
		{"a camera never split is never moved", 3, []g{
			{cams: []string{"c4"}, created: long},
			{cams: []string{"c1"}, created: long},
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{o: PoolOptions{PerWorker: tc.perWorker, RegroupAfter: time.Minute}, isolated: map[string]bool{}}
			for i, spec := range tc.groups {
				gr := &group{slot: i + 1, created: spec.created, culprit: spec.culprit, regroupFailed: spec.failed}
				if !spec.noProc {
					gr.proc = &proc{}
				}
				if !spec.crashed.IsZero() {
					gr.crashes = []time.Time{spec.crashed}
				}
				for _, id := range spec.cams {
					gr.cams = append(gr.cams, recorder.Camera{ID: id})
					if spec.isolated {
						p.isolated[id] = true
					}
				}
				p.groups = append(p.groups, gr)
			}
			mv, ok := p.nextRegroupLocked(now)
			got := ""
			if ok {
				got = mv.cam.ID + "->" + string(rune('0'+mv.to.slot))
			}
			if got != tc.want {
				t.Errorf("move %q, want %q", got, tc.want)
			}
		})
	}
}
