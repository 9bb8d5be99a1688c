package worker

import (
	"slices"
	"testing"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/storage"
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

// TestWorkerSyncsARoundInOneWave: a worker of the default grouping syncs
// every file of a round at once (storage.Options.SyncParallelism), which
// is what keeps its sysmon's fast polling to one wave of fdatasync calls
// (see workerSyncParallelism); a larger default grouping needs a larger
// bound, and this says so.
func TestWorkerSyncsARoundInOneWave(t *testing.T) {
	if workerSyncParallelism < config.DefaultCamerasPerWorker {
		t.Errorf("workerSyncParallelism %d < DefaultCamerasPerWorker %d: a worker's sync round would start in waves", workerSyncParallelism, config.DefaultCamerasPerWorker)
	}
	if workerSyncParallelism <= storage.DefaultSyncParallelism {
		t.Errorf("workerSyncParallelism %d is no more than the default %d", workerSyncParallelism, storage.DefaultSyncParallelism)
	}
}
