package main

import (
	"os"
	"runtime"
)

// supervisorProcs is the GOMAXPROCS a server runs with: 1 when its cameras
// record in worker processes and the environment sets none, else 0 (the
// Go runtime's choice, one P per core).
//
// Why one: a supervisor records nothing. It gossips, commits the index,
// serves the API and relays live viewers, none of which needs two cores
// at once, while every P it keeps spins for work between its short bursts
// on the cores its workers record on (each worker runs one P, see
// worker/doc.go). bench record at 250 cameras in 10 workers, three
// alternating pairs: the supervisor 1.1–1.4 CPU-s per 30 s with one P
// against 1.2–1.7 with two, the whole server 5–8 % less. A long export
// then takes one core at most, never both from the workers. With
// cameras_per_worker = 0 the server records itself and keeps every core.
func supervisorProcs(camerasPerWorker int, env string) int {
	if camerasPerWorker > 0 && env == "" {
		return 1
	}
	return 0
}

// setSupervisorProcs applies supervisorProcs to this process.
func setSupervisorProcs(camerasPerWorker int) {
	if n := supervisorProcs(camerasPerWorker, os.Getenv("GOMAXPROCS")); n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
