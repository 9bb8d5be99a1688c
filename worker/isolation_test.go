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
					got, _ = a.open(s.open)
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

// A camera split again leaves its earlier split; if it was the last one
// pending there, the new split's alarm resolves the earlier one.
func TestIsolationAlarmsSplitAgain(t *testing.T) {
	var a isolationAlarms
	first, _ := a.open([]string{"c1", "c2"})
	a.settle("c1")
	second, resolves := a.open([]string{"c2", "c3"})
	if second != "worker.isolated/c2,c3" || len(resolves) != 1 || resolves[0] != first {
		t.Fatalf("open of c2,c3 = %q, resolves %q; want worker.isolated/c2,c3 resolving %q", second, resolves, first)
	}
	if got := a.settle("c2"); got != "" {
		t.Fatalf("settle c2 = %q while c3 is pending", got)
	}
	if got := a.settle("c3"); got != second {
		t.Fatalf("settle c3 = %q, want %q", got, second)
	}
}
