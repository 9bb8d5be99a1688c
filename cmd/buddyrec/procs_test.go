package main

import "testing"

func TestSupervisorProcs(t *testing.T) {
	tests := []struct {
		name             string
		camerasPerWorker int
		env              string
		want             int
	}{
		{"workers record: one P", 25, "", 1},
		{"one camera per worker: one P", 1, "", 1},
		{"in process: every core", 0, "", 0},
		{"the environment decides", 25, "2", 0},
		{"the environment decides in process too", 0, "1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := supervisorProcs(tt.camerasPerWorker, tt.env); got != tt.want {
				t.Errorf("supervisorProcs(%d, %q) = %d, want %d", tt.camerasPerWorker, tt.env, got, tt.want)
			}
		})
	}
}
