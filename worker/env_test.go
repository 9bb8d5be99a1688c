package worker

import (
	"slices"
	"testing"
)

func TestWorkerEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		godebug string
	}{
		{"no GODEBUG", []string{"HOME=/root"}, "GODEBUG=" + sysmonPacing},
		{"empty GODEBUG", []string{"GODEBUG="}, "GODEBUG=" + sysmonPacing},
		{"other settings kept", []string{"GODEBUG=madvdontneed=1"}, "GODEBUG=madvdontneed=1," + sysmonPacing},
		{"a schedtrace of the operator's wins", []string{"GODEBUG=schedtrace=1000"}, "GODEBUG=schedtrace=1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := workerEnv(tc.env)
			var godebug []string
			for _, kv := range got {
				if len(kv) >= 8 && kv[:8] == "GODEBUG=" {
					godebug = append(godebug, kv)
				}
			}
			if !slices.Equal(godebug, []string{tc.godebug}) {
				t.Fatalf("workerEnv(%q) has %q, want exactly %q", tc.env, godebug, tc.godebug)
			}
			for _, kv := range tc.env {
				if kv[:min(len(kv), 8)] != "GODEBUG=" && !slices.Contains(got, kv) {
					t.Errorf("workerEnv dropped %q", kv)
				}
			}
		})
	}
}
