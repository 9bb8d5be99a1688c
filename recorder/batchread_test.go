package recorder

import (
	"testing"
	"time"
)

func TestLowatFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int64
		d    time.Duration
		want int
	}{
		{"nothing read", 0, time.Second, 1},
		{"no time", 1000, 0, 1},
		{"2 Mbit/s: 250 ms of it", 262_500, time.Second, 65_625},
		{"the same over two seconds", 525_000, 2 * time.Second, 65_625},
		{"a 512 kbit/s substream: read as it comes", 64_000, time.Second, 1},
		{"just enough", minBatch * 4, time.Second, minBatch},
		{"16 Mbit/s: capped", 2_000_000, time.Second, maxBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lowatFor(tc.n, tc.d); got != tc.want {
				t.Fatalf("lowatFor(%d, %v) = %d, want %d", tc.n, tc.d, got, tc.want)
			}
		})
	}
}

func TestRemark(t *testing.T) {
	for _, tc := range []struct {
		have, want int
		remark     bool
	}{
		{1, 1, false},
		{1, 65_625, true},       // the stream starts flowing
		{65_625, 1, true},       // it slowed: read as it comes
		{65_625, 70_000, false}, // a rate that moved a little
		{65_625, 50_000, false},
		{65_625, 100_000, true}, // more than half faster
		{65_625, 32_000, true},  // less than half
	} {
		if got := remark(tc.have, tc.want); got != tc.remark {
			t.Errorf("remark(%d, %d) = %v, want %v", tc.have, tc.want, got, tc.remark)
		}
	}
}
