package recorder

import (
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const frame = 3600 // 25 fps at 90 kHz
	type step struct {
		pts       int64
		at        time.Duration // arrival after t0
		wantOut   int64
		dup, jump bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"steady with B-frame reordering", []step{
			{0, 0, 0, false, false},
			{3 * frame, 40 * time.Millisecond, 3 * frame, false, false},
			{frame, 80 * time.Millisecond, frame, false, false},
			{2 * frame, 120 * time.Millisecond, 2 * frame, false, false},
		}},
		{"steps back 20 s", []step{
			{90000 * 100, 0, 90000 * 100, false, false},
			{90000*100 + frame, 40 * time.Millisecond, 90000*100 + frame, false, false},
			{90000*80 + 2*frame, 80 * time.Millisecond, 90000*100 + 2*frame, false, true},
			{90000*80 + 3*frame, 120 * time.Millisecond, 90000*100 + 3*frame, false, false},
		}},
		{"jumps 10 h forward with duplicates", []step{
			{0, 0, 0, false, false},
			{frame, 40 * time.Millisecond, frame, false, false},
			{90000*36000 + 2*frame, 80 * time.Millisecond, 2 * frame, false, true},
			{90000*36000 + 2*frame, 81 * time.Millisecond, 2 * frame, true, false},
			{90000*36000 + 3*frame, 120 * time.Millisecond, 3 * frame, false, false},
		}},
		{"clock ahead by more than 2 s", []step{
			{0, 0, 0, false, false},
			{3 * 90000, 40 * time.Millisecond, frame, false, true},
		}},
		{"frames 3 s late (a network stall) are not a jump", []step{
			{0, 0, 0, false, false},
			{frame, 3 * time.Second, frame, false, false},
			{2 * frame, 3*time.Second + time.Millisecond, 2 * frame, false, false},
		}},
		{"frames 12 s late are", []step{
			{0, 0, 0, false, false},
			{frame, 12 * time.Second, 12 * 90000, false, true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTimeline(90000)
			for i, s := range tc.steps {
				out, dup, jump, _ := tl.place(s.pts, t0.Add(s.at))
				if out != s.wantOut || dup != s.dup || jump != s.jump {
					t.Errorf("step %d: out %d dup %v jump %v, want %d %v %v", i, out, dup, jump, s.wantOut, s.dup, s.jump)
				}
			}
		})
	}
}

func TestTimelineCutsAreRateLimited(t *testing.T) {
	tl := newTimeline(90000)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tl.place(0, t0)
	cuts := 0
	// a clock that steps back 20 s every second for two minutes
	for i := 1; i <= 120; i++ {
		if _, _, jump, cut := tl.place(int64(i)*90000-int64(i)*20*90000, t0.Add(time.Duration(i)*time.Second)); !jump {
			t.Fatalf("jump %d not detected", i)
		} else if cut {
			cuts++
		}
	}
	if max := cutBurst + int(2*time.Minute/cutRefill); cuts > max {
		t.Errorf("%d cuts in 2 minutes, want at most %d", cuts, max)
	}
}
