//go:build !race

package main

// raceEnabled tells the process tests they run under the race detector,
// which multiplies every process's CPU (see processTestParallel).
const raceEnabled = false
