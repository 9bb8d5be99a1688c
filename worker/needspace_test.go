package worker

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

// TestNeedSpaceReachesTheSupervisorsRetention: a worker whose write met a
// full disk asks, with its batch, for retention to run. The supervisor
// asks its store once per request, even when the batch comes again, and
// only after the batch's updates are in the index, so that what the
// worker closed can be deleted.
func TestNeedSpaceReachesTheSupervisorsRetention(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(storage.Options{Dir: dir, Server: "rec-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var asked, indexedFirst int
	p, err := NewPool(PoolOptions{Server: "rec-a", DataDir: dir, Dir: t.TempDir(), PerWorker: 1, Store: st, Segment: time.Minute, Part: time.Second,
		OnNeedSpace: func() {
			asked++
			if segs, err := st.Segments("rec-a/cam1", start, start.Add(time.Minute)); err == nil && len(segs) == 1 {
				indexedFirst++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	update := fmt.Sprintf(`{"camera":"rec-a/cam1","file":"rec-a/cam1/2026-12-01/08-00-00.000-rec-a.mp4","start":%d,"end":%d,"bytes":1000,"codec":"H264","home":"rec-a","recorded_by":"rec-a"}`,
		start.UnixNano(), start.Add(10*time.Second).UnixNano())
	need, _ := json.Marshal(queued{NeedSpace: true})
	b := Batch{Updates: []json.RawMessage{json.RawMessage(update), need}, Next: 2}
	ix := &indexer{}
	w := &proc{id: 1}
	if !p.apply(w, b, ix) {
		t.Fatal("the batch was refused")
	}
	p.apply(w, b, ix) // delivered again
	if asked != 1 || indexedFirst != 1 {
		t.Errorf("retention asked %d times (%d after the update was indexed), want once, after", asked, indexedFirst)
	}
}
