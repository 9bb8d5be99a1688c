// Package testfootage writes footage of the committed test clips straight
// into a storage.Store, for tests that need a server holding recordings
// without running a camera (storage's own tests cannot import it, since it
// imports storage).
package testfootage

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/internal/tsdemux"
	"github.com/buddyrec/buddyrec/storage"
)

// Write records the first d of testdata/h264-aac.ts (video only) into st
// as one recorder session of camera id, its first frame arriving at start.
// root is the path of the module root from the test's directory ("../..").
func Write(t testing.TB, root string, st *storage.Store, id string, start time.Time, d time.Duration) {
	t.Helper()
	c, err := tsdemux.Load(filepath.Join(root, "testdata", "h264-aac.ts"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Begin(storage.Stream{Camera: id, Home: camera.HomeOf(id), Tracks: []storage.Track{{Codec: c.Video, TimeScale: 90000}}})
	if err != nil {
		t.Fatal(err)
	}
	first := c.VideoSamples[0].DTS
	for _, s := range c.VideoSamples {
		at := time.Duration(s.DTS-first) * time.Second / 90000
		if at >= d {
			break
		}
		if err := w.Write(storage.Sample{DTS: s.DTS, PTSOffset: s.PTSOffset, Sync: s.Sync, Payload: s.Payload, Arrival: start.Add(at)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed segments reach the index at the syncer's next round: make
	// the footage visible to what the test does next.
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
}
