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
		{"2 Mbit/s: 40 ms of it", 262_500, time.Second, 10_500},
		{"the same over two seconds", 525_000, 2 * time.Second, 10_500},
		{"a 256 kbit/s substream: too few packets to gather", 32_000, time.Second, 1},
		{"just enough", minBatch * 25, time.Second, minBatch},
		{"16 Mbit/s: capped", 2_000_000, time.Second, maxBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lowatFor(tc.n, tc.d); got != tc.want {
				t.Fatalf("lowatFor(%d, %v) = %d, want %d", tc.n, tc.d, got, tc.want)
			}
		})
	}
}
