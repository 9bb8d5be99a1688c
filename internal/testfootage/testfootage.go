// Package testfootage writes footage of the committed test clips straight
// into a storage.Store, for tests and benchmarks that need a server
// holding recordings without running a camera (storage's own tests cannot
// import it, since it imports storage).
package testfootage

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/internal/tsdemux"
	"github.com/buddyrec/buddyrec/storage"
)

// Write records the first d of testdata/h264-aac.ts (video only) into st
// as one recorder session of camera id, its first frame arriving at start;
// a d longer than the clip loops it with continuous timestamps.
// root is the path of the module root from the test's directory ("../..").
func Write(t testing.TB, root string, st *storage.Store, id string, start time.Time, d time.Duration) {
	t.Helper()
	if err := Synthesize(root, st, id, start, d); err != nil {
		t.Fatal(err)
	}
}

// Synthesize is Write for callers without a testing.TB (benchmark
// commands): it returns the first error instead.
func Synthesize(root string, st *storage.Store, id string, start time.Time, d time.Duration) error {
	c, err := tsdemux.Load(filepath.Join(root, "testdata", "h264-aac.ts"))
	if err != nil {
		return err
	}
	w, err := st.Begin(storage.Stream{Camera: id, Home: camera.HomeOf(id), Tracks: []storage.Track{{Codec: c.Video, TimeScale: 90000}}})
	if err != nil {
		return err
	}
	first := c.VideoSamples[0].DTS
	span := c.VideoSamples[len(c.VideoSamples)-1].DTS - first + 90000/25
	for loop := int64(0); ; loop++ {
		for _, s := range c.VideoSamples {
			dts := s.DTS + loop*span
			at := time.Duration(dts-first) * time.Second / 90000
			if at >= d {
				if err := w.Close(); err != nil {
					return err
				}
				// Closed segments reach the index at the syncer's next
				// round: make the footage visible to what comes next.
				return st.Sync()
			}
			if err := w.Write(storage.Sample{DTS: dts, PTSOffset: s.PTSOffset, Sync: s.Sync, Payload: s.Payload, Arrival: start.Add(at)}); err != nil {
				w.Close()
				return fmt.Errorf("synthesize %s: %w", id, err)
			}
		}
	}
}
