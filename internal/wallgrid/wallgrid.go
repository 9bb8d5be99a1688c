// Package wallgrid puts a process's periodic work on one grid of the wall
// clock. Timers due at the same instant fire in one wake-up of the
// process; timers of the same period started at different moments each
// wake it on their own (and twice, since the runtime's netpoller sleeps
// in whole milliseconds). For a worker process that is idle between its
// cameras' reads, the wake-ups are most of what it costs, so everything
// periodic in a recorder (the reads' ticks, the per-camera watch, the
// storage sync rounds) waits for the next multiple of its period of the
// wall clock, and all of them coincide with the read grid's ticks.
package wallgrid

import "time"

// Until is how long until the next multiple of d of the wall clock (d
// itself if now is on one). Multiples of 40 ms and of a second coincide at
// every second.
func Until(d time.Duration) time.Duration {
	now := time.Now()
	return now.Truncate(d).Add(d).Sub(now)
}
