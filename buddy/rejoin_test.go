package buddy

import (
	"fmt"
	"testing"
)

// TestRejoinsDead: in any live set, exactly deadRejoiners servers (or all,
// when fewer are alive) try to reach each dead server, and each side of a
// partition picks its own.
func TestRejoinsDead(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 10, 100} {
		var live []string
		for i := range n {
			live = append(live, fmt.Sprintf("rec-%03d", i))
		}
		for d := range 20 {
			dead := fmt.Sprintf("dead-%d", d)
			chosen := 0
			for _, self := range live {
				if rejoinsDead(self, dead, live) {
					chosen++
				}
			}
			if want := min(n, deadRejoiners); chosen != want {
				t.Errorf("%d live, dead %s: %d servers rejoin it, want %d", n, dead, chosen, want)
			}
		}
	}

	// A partition: each half of a 20-server site sees the other half dead,
	// and each half has its own rejoiners for every server across.
	var a, b []string
	for i := range 20 {
		name := fmt.Sprintf("rec-%02d", i)
		if i%2 == 0 {
			a = append(a, name)
		} else {
			b = append(b, name)
		}
	}
	for _, side := range [][2][]string{{a, b}, {b, a}} {
		mine, across := side[0], side[1]
		for _, dead := range across {
			chosen := 0
			for _, self := range mine {
				if rejoinsDead(self, dead, mine) {
					chosen++
				}
			}
			if chosen != deadRejoiners {
				t.Errorf("partition: %d servers of %v reach across to %s, want %d", chosen, mine, dead, deadRejoiners)
			}
		}
	}
}
