package storage

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openTestStore(t, dir, nil)
	_, err := Open(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "index.db is locked by another process") {
		t.Fatalf("second Open: %v", err)
	}
}

// crashWriter writes samples and then abandons the writer as a crash
// would: no Close, file handle dropped, index handle closed.
func crashWriter(t *testing.T, st *Store, w *Writer, samples []Sample) (segFile string) {
	t.Helper()
	writeAll(t, w, samples)
	if w.seg == nil {
		t.Fatal("no open segment")
	}
	segFile = filepath.Join(st.opts.Dir, w.seg.e.File)
	// the sync round that ran before the crash indexed what was written
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	w.seg.f.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return segFile
}

// crashAfter records the H.264+AAC clip into a store in dir, in 1 s parts,
// up to the sample that arrives at upTo, then crashes (crashWriter). It
// returns the open segment's file.
func crashAfter(t *testing.T, dir string, upTo time.Duration) string {
	t.Helper()
	c := loadClip(t, "../testdata/h264-aac.ts")
	st, err := Open(Options{Dir: dir, Server: "rec-a", Segment: time.Minute, Part: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	samples := c.stream(testEpoch, 1, true)
	var n int
	for n = range samples {
		if samples[n].Arrival.Sub(testEpoch) >= upTo {
			break
		}
	}
	return crashWriter(t, st, w, samples[:n])
}

func TestRecoveryTornTail(t *testing.T) {
	dir := t.TempDir()
	// up to the sample at 3.5 s: three 1 s parts are flushed
	path := crashAfter(t, dir, 3500*time.Millisecond)
	fi, _ := os.Stat(path)
	goodSize := fi.Size()
	// a torn fragment: a moof header claiming more than was written
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 0x10, 0, 'm', 'o', 'o', 'f', 0, 0, 0, 16, 'm', 'f', 'h', 'd', 0, 0, 0})
	f.Close()

	var alarms []Alarm
	st2 := openTestStore(t, dir, func(o *Options) { o.OnAlarm = func(a Alarm) { alarms = append(alarms, a) } })
	segs := checkConsistent(t, st2, dir)
	if len(segs) != 1 {
		t.Fatalf("got %d segments", len(segs))
	}
	if d := segs[0].End.Sub(segs[0].Start); d != 3*time.Second {
		t.Errorf("recovered end %v after start, want the 3 s flushed", d)
	}
	if fi, _ := os.Stat(path); fi.Size() != goodSize || segs[0].Bytes != goodSize {
		t.Errorf("file %d bytes, index %d, want truncated to %d", fi.Size(), segs[0].Bytes, goodSize)
	}
	p := ffprobe(t, path)
	if _, frames, _, _ := p.stream("video"); frames != 75 {
		t.Errorf("recovered file plays %d frames, want 75", frames)
	}
	if p.duration() < 2900*time.Millisecond || p.duration() > 3100*time.Millisecond {
		t.Errorf("ffprobe duration %v, want 3 s", p.duration())
	}
	if len(alarms) != 1 || alarms[0].Kind != AlarmRecovery || !alarms[0].Lost {
		t.Errorf("alarms %+v, want one recovery alarm that lost footage", alarms)
	}
}

// TestRecoveryWithoutLoss: a crash between two fragment writes leaves an
// open segment and nothing torn; recovery closes it and says that nothing
// was lost, so the node logs it as info instead of an alarm to acknowledge
// after every kill -9.
func TestRecoveryWithoutLoss(t *testing.T) {
	dir := t.TempDir()
	path := crashAfter(t, dir, 2500*time.Millisecond)
	before, _ := os.Stat(path)

	var alarms []Alarm
	st2 := openTestStore(t, dir, func(o *Options) { o.OnAlarm = func(a Alarm) { alarms = append(alarms, a) } })
	segs := checkConsistent(t, st2, dir)
	if len(segs) != 1 || segs[0].End.Sub(segs[0].Start) != 2*time.Second {
		t.Fatalf("segments %+v, want one of the 2 s flushed", segs)
	}
	if after, _ := os.Stat(path); after.Size() != before.Size() {
		t.Errorf("file cut from %d to %d bytes although nothing was torn", before.Size(), after.Size())
	}
	if len(alarms) != 1 || alarms[0].Kind != AlarmRecovery || alarms[0].Lost {
		t.Fatalf("alarms %+v, want one recovery report that lost nothing", alarms)
	}
	if !strings.Contains(alarms[0].Err, "closed 1 open segments (0 truncated)") {
		t.Errorf("recovery report %q does not say what was closed", alarms[0].Err)
	}
}

func TestRecoveryOrphansAndMissingFiles(t *testing.T) {
	c := loadClip(t, "../testdata/h265.ts")
	dir := t.TempDir()
	st, _ := Open(Options{Dir: dir, Server: "rec-a", Segment: 4 * time.Second})
	w, _ := st.Begin(Stream{Camera: "rec-a/yard", Home: "rec-a", Tracks: c.tracks(false)})
	writeAll(t, w, c.stream(testEpoch, 1, false))
	w.Close()
	segs := allSegments(t, st, "rec-a/yard")
	if len(segs) != 3 {
		t.Fatalf("got %d segments", len(segs))
	}
	st.Close()

	// orphan with footage: a copy under a later name, no index entry
	data, _ := os.ReadFile(filepath.Join(dir, segs[0].File))
	orphan := filepath.Join(dir, "rec-a/yard/2026-03-04/05-10-00.000-rec-b.mp4")
	os.WriteFile(orphan, data, 0o644)
	// orphan with only the init segment: a crash right after creation
	initOnly := filepath.Join(dir, "rec-a/yard/2026-03-04/05-11-00.000-rec-a.mp4")
	os.WriteFile(initOnly, data[:res(t, filepath.Join(dir, segs[0].File))], 0o644)
	// entry whose file vanished
	os.Remove(filepath.Join(dir, segs[1].File))
	// a file that is not a segment is left alone
	other := filepath.Join(dir, "rec-a/yard/2026-03-04/notes.txt")
	os.WriteFile(other, []byte("x"), 0o644)

	var alarms []Alarm
	st2 := openTestStore(t, dir, func(o *Options) { o.OnAlarm = func(a Alarm) { alarms = append(alarms, a) } })
	got := checkConsistent(t, st2, dir)
	if len(alarms) != 1 || alarms[0].Kind != AlarmRecovery || !alarms[0].Lost {
		t.Errorf("alarms %+v, want one recovery alarm that lost footage (an indexed file vanished)", alarms)
	}
	if len(got) != 3 {
		t.Fatalf("after recovery %d segments, want 3 (2 kept + 1 orphan): %+v", len(got), got)
	}
	o := got[2]
	if o.RecordedBy != "rec-b" || o.Home != "rec-a" || o.Codec != "h265" ||
		!o.Start.Equal(time.Date(2026, 3, 4, 5, 10, 0, 0, time.UTC)) || o.End.Sub(o.Start) != 4*time.Second {
		t.Errorf("orphan indexed as %+v", o)
	}
	if fileExists(initOnly) {
		t.Error("init-only orphan not removed")
	}
	if !fileExists(other) {
		t.Error("unrelated file removed")
	}
}

// res returns the init segment size of a segment file.
func res(t *testing.T, path string) int {
	t.Helper()
	data, _ := os.ReadFile(path)
	pos := 0
	for pos < len(data) {
		size, typ, _, ok := boxHeader(data[pos:])
		if !ok {
			break
		}
		pos += int(size)
		if typ == "moov" {
			return pos
		}
	}
	t.Fatal("no moov")
	return 0
}

const helperEnv = "BUDDYREC_STORAGE_HELPER_DIR"

// TestHelperWriter is the child of TestKill9: it records a clip in a loop
// until it is killed, printing the arrival time of every written sample.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	c := loadClip(t, "../testdata/h264-aac.ts")
	st, err := Open(Options{Dir: dir, Server: "rec-a", Segment: 4 * time.Second, Part: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := st.Begin(Stream{Camera: "rec-a/lobby", Home: "rec-a", Tracks: c.tracks(true)})
	out := bufio.NewWriter(os.Stdout)
	for i, s := range c.stream(testEpoch, 30, true) {
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
		if s.Track == 0 {
			out.WriteString("written " + strconv.FormatInt(s.Arrival.UnixNano(), 10) + "\n")
			out.Flush()
			if i%5 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	t.Fatal("parent did not kill the helper")
}

func TestKill9(t *testing.T) {
	needFFprobe(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var last int64
	killed := false
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "written ")
		if !ok {
			continue
		}
		last, _ = strconv.ParseInt(v, 10, 64)
		// kill in the middle of the third 4 s segment
		if !killed && time.Unix(0, last).Sub(testEpoch) >= 9500*time.Millisecond {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("helper ended before it was killed")
	}
	lastWritten := time.Unix(0, last)
	t.Logf("killed after %v of footage", lastWritten.Sub(testEpoch))

	st := openTestStore(t, dir, nil)
	segs := checkConsistent(t, st, dir)
	if len(segs) < 3 {
		t.Fatalf("got %d segments after kill -9", len(segs))
	}
	end := segs[len(segs)-1].End
	t.Logf("%d segments, recovered up to %v", len(segs), end.Sub(testEpoch))
	if lost := lastWritten.Sub(end); lost > time.Second+100*time.Millisecond {
		t.Errorf("lost %v of footage, want at most one part (1 s)", lost)
	}
	for i, seg := range segs {
		p := ffprobe(t, st.SegmentPath(seg))
		_, frames, _, ok := p.stream("video")
		want := seg.End.Sub(seg.Start)
		if !ok || (p.duration()-want).Abs() > time.Second || frames < int(want/(40*time.Millisecond))-1 {
			t.Errorf("segment %d (%s, %v): ffprobe %d frames, duration %v", i, seg.File, want, frames, p.duration())
		}
	}
	// the index itself is sound
	err = st.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Errorf("index check: %v", err)
	}
}
