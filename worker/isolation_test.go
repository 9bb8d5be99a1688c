package worker

import "testing"

func TestIsolationAlarms(t *testing.T) {
	type step struct {
		open   []string // a split of these cameras
		settle string   // or this camera accounted for
		want   string   // open: the condition it opens; settle: the one it resolves
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"the last camera resolves", []step{
			{open: []string{"c3", "c1", "c2"}, want: "worker.isolated/c1,c2,c3"},
			{settle: "c1"},
			{settle: "c3"},
			{settle: "c2", want: "worker.isolated/c1,c2,c3"},
		}},
		{"a camera never split resolves nothing", []step{
			{open: []string{"c1", "c2"}, want: "worker.isolated/c1,c2"},
			{settle: "c9"},
			{settle: "c1"},
		}},
		{"settled twice counts once", []step{
			{open: []string{"c1", "c2"}, want: "worker.isolated/c1,c2"},
			{settle: "c1"},
			{settle: "c1"},
			{settle: "c2", want: "worker.isolated/c1,c2"},
		}},
		{"two splits apart", []step{
			{open: []string{"a1", "a2"}, want: "worker.isolated/a1,a2"},
			{open: []string{"b1", "b2"}, want: "worker.isolated/b1,b2"},
			{settle: "a1"},
			{settle: "b1"},
			{settle: "b2", want: "worker.isolated/b1,b2"},
			{settle: "a2", want: "worker.isolated/a1,a2"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a isolationAlarms
			for i, s := range tc.steps {
				var got string
				if s.open != nil {
					got = a.open(s.open)
				} else {
					got = a.settle(s.settle)
				}
				if got != s.want {
					t.Fatalf("step %d (%+v): %q, want %q", i, s, got, s.want)
				}
			}
		})
	}
}
