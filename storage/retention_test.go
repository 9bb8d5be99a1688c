package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// recordAt writes the 10 s clip for camera starting at start (three
// segments of 4, 4 and 2 s).
func recordAt(t *testing.T, st *Store, c *clip, camera string, start time.Time) {
	t.Helper()
	w, err := st.Begin(Stream{Camera: camera, Home: "rec-a", Tracks: c.tracks(false)})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, c.stream(start, 1, false))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionByAge(t *testing.T) {
	c := loadClip(t, "../testdata/h265.ts")
	dir := t.TempDir()
	st := openTestStore(t, dir, func(o *Options) { o.Retention = time.Hour })
	recordAt(t, st, c, "rec-a/a", testEpoch)
	recordAt(t, st, c, "rec-a/b", testEpoch.Add(5*time.Second))

	// an open segment older than everything must survive
	w, _ := st.Begin(Stream{Camera: "rec-a/old", Home: "rec-a", Tracks: c.tracks(false)})
	writeAll(t, w, c.stream(testEpoch.Add(-time.Hour), 1, false)[:60])

	// one hour after 00:09.5 only footage ending before 00:09.5 is expired:
	// a's 0-4 and 4-8 s segments and b's 5-9 s segment.
	n, err := st.EnforceRetention(testEpoch.Add(time.Hour + 9500*time.Millisecond))
	if err != nil || n != 3 {
		t.Fatalf("deleted %d (%v), want 3", n, err)
	}
	a := allSegments(t, st, "rec-a/a")
	b := allSegments(t, st, "rec-a/b")
	if len(a) != 1 || a[0].Start != testEpoch.Add(8*time.Second) {
		t.Errorf("camera a keeps %+v", a)
	}
	if len(b) != 2 || b[0].Start != testEpoch.Add(9*time.Second) {
		t.Errorf("camera b keeps %+v", b)
	}
	if old := allSegments(t, st, "rec-a/old"); len(old) != 1 || !old[0].Open {
		t.Errorf("open segment touched: %+v", old)
	}
	w.Close()
	checkConsistent(t, st, dir)
}

func TestRetentionBySpace(t *testing.T) {
	c := loadClip(t, "../testdata/h265.ts")
	dir := t.TempDir()
	var free, total uint64 = 0, 1 << 40
	var alarms []Alarm
	st := openTestStore(t, dir, func(o *Options) {
		o.MinFreeFraction = 0.05
		// The syncer checks free space after each round and runs retention
		// itself when it is low: with a round every part it would delete
		// between this test's steps and race its counts. Rounds here are
		// the test's own Syncs.
		o.SyncInterval = time.Hour
		o.StatFS = func(string) (uint64, uint64, error) { return free, total, nil }
		o.OnAlarm = func(a Alarm) { alarms = append(alarms, a) }
	})
	recordAt(t, st, c, "rec-a/a", testEpoch)
	recordAt(t, st, c, "rec-a/b", testEpoch.Add(2*time.Second))
	before := append(allSegments(t, st, "rec-a/a"), allSegments(t, st, "rec-a/b")...)

	// enough space: nothing goes
	free = total / 10
	if n, err := st.EnforceRetention(testEpoch.Add(time.Hour)); n != 0 || err != nil {
		t.Fatalf("deleted %d (%v) with enough space", n, err)
	}
	// 1 byte more than the oldest segment short: the two oldest (a@0, b@2) go
	a0 := before[0]
	free = total/20 - uint64(a0.Bytes) - 1
	n, err := st.EnforceRetention(testEpoch.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("deleted %d (%v), want 2", n, err)
	}
	if _, err := os.Stat(st.SegmentPath(a0)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("oldest segment file still there: %v", err)
	}
	a := allSegments(t, st, "rec-a/a")
	b := allSegments(t, st, "rec-a/b")
	if len(a) != 2 || len(b) != 2 || a[0].Start != testEpoch.Add(4*time.Second) || b[0].Start != testEpoch.Add(6*time.Second) {
		t.Errorf("kept a=%v b=%v", a, b)
	}
	checkConsistent(t, st, dir)

	// a floor that cannot be reached deletes everything closed and alarms
	free = 0
	total = 1 << 50
	if n, _ := st.EnforceRetention(testEpoch.Add(time.Hour)); n != 4 {
		t.Errorf("deleted %d, want the remaining 4", n)
	}
	if len(alarms) == 0 || alarms[len(alarms)-1].Kind != AlarmDiskLow {
		t.Errorf("alarms %+v, want disk_low", alarms)
	}
	// still low on the next run: no repeated alarm
	n0 := len(alarms)
	st.EnforceRetention(testEpoch.Add(time.Hour))
	if len(alarms) != n0 {
		t.Errorf("disk_low raised again while the episode lasts: %+v", alarms[n0:])
	}
	if _, ok := st.Health()[AlarmDiskLow]; !ok {
		t.Error("health lacks disk_low")
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

func TestRetentionCrashMidDelete(t *testing.T) {
	c := loadClip(t, "../testdata/h265.ts")
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir, Server: "rec-a", Segment: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	recordAt(t, st, c, "rec-a/a", testEpoch)
	segs := allSegments(t, st, "rec-a/a")
	// crash after marking, before removing the file (segment 0) and after
	// removing the file, before deleting the entry (segment 1)
	for i, seg := range segs[:2] {
		err := st.db.Update(func(tx *bolt.Tx) error {
			e := entry{File: seg.File, Start: seg.Start.UnixNano(), End: seg.End.UnixNano(), Bytes: seg.Bytes, Codec: seg.Codec, Deleting: true}
			return putEntry(tx, "rec-a/a", &e)
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			os.Remove(st.SegmentPath(seg))
		}
	}
	// marked entries are invisible to queries at once
	if got := allSegments(t, st, "rec-a/a"); len(got) != 1 {
		t.Errorf("queries show %d segments while 2 are being deleted", len(got))
	}
	st.Close()

	st2 := openTestStore(t, dir, nil)
	got := checkConsistent(t, st2, dir)
	if len(got) != 1 || got[0].File != segs[2].File {
		t.Errorf("after recovery %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, segs[0].File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marked file not removed: %v", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	st := openTestStore(t, t.TempDir(), func(o *Options) { o.RetentionInterval = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- st.Run(ctx) }()
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// TestDiskFullFreesSpaceAtOnce: a write that meets ENOSPC makes retention
// run at once (no retention pass is due: Run is not even running, and
// the sync interval is an hour), deleting the oldest footage down to the
// floor plus a margin.
func TestDiskFullFreesSpaceAtOnce(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	budget := int64(1 << 62)
	var bmu sync.Mutex
	st := openTestStore(t, dir, func(o *Options) {
		o.SyncInterval = time.Hour
		o.MinFreeBytes = 1 << 20
		o.StatFS = func(string) (uint64, uint64, error) { return 0, 100 << 20, nil }
		o.FS = budgetFS{budget: &budget, mu: &bmu}
	})
	recordAt(t, st, c, "rec-a/old", testEpoch)
	before := len(allSegments(t, st, "rec-a/old"))
	bmu.Lock()
	budget = 0
	bmu.Unlock()
	w, _ := st.Begin(Stream{Camera: "rec-a/new", Home: "rec-a", Tracks: c.tracks(false)})
	var full bool
	for _, s := range c.stream(testEpoch.Add(time.Hour), 1, false) {
		if err := w.Write(s); isDiskFull(err) {
			full = true
			break
		}
	}
	if !full {
		t.Fatal("no write met the full disk")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(allSegments(t, st, "rec-a/old")) == before {
		if time.Now().After(deadline) {
			t.Fatal("ENOSPC did not free space within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.Close()
}

// TestDiskFullLosesNothing fills a real disk (a tmpfs) while retention is
// late: no retention pass and no sync round is due, so only the write
// that meets ENOSPC can make room. It frees the oldest footage on the
// spot and goes on: the camera records the whole stream in one file,
// every frame, and no write returns an error. A store without an index
// (a worker) asks the index owner to delete and waits for the space.
func TestDiskFullLosesNothing(t *testing.T) {
	for _, remote := range []bool{false, true} {
		name := "own index"
		if remote {
			name = "worker"
		}
		t.Run(name, func(t *testing.T) { diskFullLosesNothing(t, remote) })
	}
}

func diskFullLosesNothing(t *testing.T, remote bool) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := testutil.Tmpfs(t, "12m")
	var mu sync.Mutex
	var alarms []string
	onAlarm := func(a Alarm) { mu.Lock(); alarms = append(alarms, a.Kind); mu.Unlock() }
	owner := openTestStore(t, dir, func(o *Options) {
		o.Segment = time.Hour // the new camera's stream is one file
		o.SyncInterval = time.Hour
		o.MinFreeBytes = 1 << 20
		o.OnAlarm = onAlarm
	})
	st := owner
	if remote {
		st = openTestStore(t, dir, func(o *Options) {
			o.Segment = time.Hour
			o.SyncInterval = time.Hour
			o.OnAlarm = onAlarm
			o.Commit = owner.Apply
			o.NeedSpace = owner.RequestSpace
		})
	}
	for i := range 3 {
		recordAt(t, owner, c, "rec-a/old", testEpoch.Add(time.Duration(i)*time.Minute))
	}
	old := len(allSegments(t, owner, "rec-a/old"))
	// the rest of the disk: a ballast written until the disk refuses it
	ballast, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := ballast.Write(chunk); err != nil {
			if !isDiskFull(err) {
				t.Fatal(err)
			}
			break
		}
	}
	ballast.Close()

	samples := c.stream(testEpoch.Add(time.Hour), 2, false)
	w, err := st.Begin(Stream{Camera: "rec-a/new", Home: "rec-a", Tracks: c.tracks(false)})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		if err := w.Write(s); err != nil {
			t.Fatalf("write %d of %d on the full disk: %v", i, len(samples), err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := allSegments(t, owner, "rec-a/new")
	if len(segs) != 1 {
		t.Fatalf("the stream is in %d segments, want 1 (a refused write ends a segment): %+v", len(segs), segs)
	}
	frames := 0
	for _, s := range samples {
		if s.Track == 0 {
			frames++
		}
	}
	p := ffprobe(t, owner.SegmentPath(segs[0]))
	var got string
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			got = s.NbReadFrames
		}
	}
	if got != fmt.Sprint(frames) {
		t.Errorf("ffprobe reads %s video frames, want all %d", got, frames)
	}
	if left := len(allSegments(t, owner, "rec-a/old")); left >= old {
		t.Errorf("the old camera still has %d of %d segments: nothing was freed", left, old)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range alarms {
		if k == AlarmDiskFull || k == AlarmWriteError {
			t.Errorf("alarm %s: a write was lost", k)
		}
	}
}
