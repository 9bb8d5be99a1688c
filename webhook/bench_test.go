package webhook

import (
	"path/filepath"
	"testing"
)

// BenchmarkEnqueue measures durable Enqueue (one fsync'd bbolt commit per
// notice) with two targets and no sender running.
//
//	go test -run '^$' -bench Enqueue ./webhook/
func BenchmarkEnqueue(b *testing.B) {
	ob, err := Open(filepath.Join(b.TempDir(), "outbox.db"), Options{Targets: []Target{
		{Name: "a", URL: "http://127.0.0.1:1/a", Secret: testSecret},
		{Name: "b", URL: "http://127.0.0.1:1/b", Secret: testSecret},
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer ob.Close()
	n := notice(0)
	for b.Loop() {
		n.ID = ""
		if err := ob.Enqueue(n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notices/s")
}
