package recorder

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/internal/testutil"
	"github.com/buddyrec/buddyrec/storage"
)

type storeSink struct{ st *storage.Store }

func (s storeSink) Begin(st storage.Stream) (SampleWriter, error) { return s.st.Begin(st) }

// coverage accumulates the union of every span the index ever showed for
// a camera: retention deletes old footage, so the share of time recorded
// is what was indexed at some point, not what is left at the end.
type coverage struct{ spans [][2]time.Time }

func (c *coverage) add(from, to time.Time) { c.spans = append(c.spans, [2]time.Time{from, to}) }

// within is the recorded time inside [from, to).
func (c *coverage) within(from, to time.Time) time.Duration {
	s := append([][2]time.Time(nil), c.spans...)
	sort.Slice(s, func(i, j int) bool { return s[i][0].Before(s[j][0]) })
	var total time.Duration
	var curA, curB time.Time
	flush := func() {
		a, b := curA, curB
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			total += b.Sub(a)
		}
	}
	for i, sp := range s {
		if i > 0 && !sp[0].After(curB) {
			if sp[1].After(curB) {
				curB = sp[1]
			}
			continue
		}
		if i > 0 {
			flush()
		}
		curA, curB = sp[0], sp[1]
	}
	if len(s) > 0 {
		flush()
	}
	return total
}

// TestFullDiskKeepsRecording records 4 cameras (~2 Mbit/s each) onto a
// 40 MB tmpfs of which a ballast file takes 24 MB, so the disk is full
// after some 15 s and stays full; retention must keep up and write errors
// must not end sessions. Share of time recorded, from the index against
// the wall clock, must be ≥ 95 % per camera.
func TestFullDiskKeepsRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("records for 40 s")
	}
	dir := testutil.Tmpfs(t, "40m")
	if err := os.WriteFile(filepath.Join(dir, "ballast"), make([]byte, 24<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	alarms := map[string]int{}
	st, err := storage.Open(storage.Options{
		Dir: dir, Server: "a", Segment: 60 * time.Second, Part: time.Second, MinFreeFraction: 0.05,
		OnAlarm: func(a storage.Alarm) { mu.Lock(); alarms[a.Kind]++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); st.Run(ctx) }()
	defer func() { cancel(); <-runDone; st.Close() }()

	srv := startCams(t, 4, "h264", nil)
	m := newTestManager(t, storeSink{st})
	var cams []Camera
	for i := 1; i <= 4; i++ {
		cams = append(cams, Camera{ID: "a/cam" + string(rune('0'+i)), URL: srv.URL(i)})
	}
	m.Set(cams)
	waitFor(t, 15*time.Second, "4 cameras recording", func() bool {
		for _, c := range cams {
			if status(m, c.ID).State != StateRecording {
				return false
			}
		}
		return true
	})
	start := time.Now()
	cov := map[string]*coverage{}
	for _, c := range cams {
		cov[c.ID] = &coverage{}
	}
	full := time.Duration(0)
	for time.Since(start) < 40*time.Second {
		time.Sleep(250 * time.Millisecond)
		// Index what was written so far before looking: retention may
		// delete a segment within a round of its close, and what was
		// recorded then must count even though the index lagged.
		if err := st.Sync(); err != nil {
			t.Logf("sync: %v", err)
		}
		for _, c := range cams {
			segs, err := st.Segments(c.ID, start.Add(-time.Minute), time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range segs {
				cov[c.ID].add(s.Start, s.End)
			}
		}
		var sf unixStatfs
		if free, total, err := statfs(dir, &sf); err == nil && free < total/10 {
			full += 250 * time.Millisecond
		}
	}
	end := time.Now().Add(-3 * time.Second) // the index lags by up to a part and a sync round
	from := start.Add(2 * time.Second)
	// The disk fills after some 15 s (later on a loaded machine under the
	// race detector); a third of the run spent full still tests it.
	if full < 15*time.Second {
		t.Errorf("the disk was nearly full for only %s of 40 s: the test did not test a full disk", full)
	}
	for _, c := range cams {
		got := cov[c.ID].within(from, end)
		share := float64(got) / float64(end.Sub(from))
		st := status(m, c.ID)
		t.Logf("%s: %.1f %% of %s recorded, reconnects %d", c.ID, 100*share, end.Sub(from).Round(time.Second), st.Reconnects)
		if share < 0.95 {
			t.Errorf("%s: only %.1f %% of the time recorded on the full disk, want ≥ 95 %%", c.ID, 100*share)
		}
		if st.Reconnects != 0 {
			t.Errorf("%s: %d reconnects: the full disk ended sessions", c.ID, st.Reconnects)
		}
	}
	mu.Lock()
	t.Logf("alarms: %v; nearly full for %s", alarms, full)
	mu.Unlock()
}
