package wallgrid

import (
	"testing"
	"time"
)

func TestUntilLandsOnTheGrid(t *testing.T) {
	for _, d := range []time.Duration{40 * time.Millisecond, time.Second, 5 * time.Second} {
		before := time.Now()
		u := Until(d)
		if u <= 0 || u > d {
			t.Fatalf("Until(%v) = %v, want within (0, %v]", d, u, d)
		}
		// the instant it names is a multiple of d, within the time the
		// call took
		at := before.Add(u).Round(0)
		if off := at.Sub(at.Truncate(d)); off > time.Millisecond && d-off > time.Millisecond {
			t.Errorf("Until(%v) names %v, %v past a multiple", d, at, off)
		}
	}
}
