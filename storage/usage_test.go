package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestUsage: per camera, the bytes the index reports are the bytes of the
// files on disk, and the oldest footage is the first segment's start; a
// segment being deleted no longer counts.
func TestUsage(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	st := openTestStore(t, dir, func(o *Options) { o.Segment = 3 * time.Second; o.Part = 500 * time.Millisecond })
	for i, cam := range []string{"rec-a/door", "rec-b/yard"} {
		w, err := st.Begin(Stream{Camera: cam, Home: "rec-a", Tracks: c.tracks(true)})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, c.stream(testEpoch.Add(time.Duration(i)*time.Minute), 1+i, true))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Closed segments reach the index at the syncer's next round.
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	u, err := st.Usage()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i, cam := range []string{"rec-a/door", "rec-b/yard"} {
		var onDisk int64
		segs := allSegments(t, st, cam)
		for _, s := range segs {
			fi, err := os.Stat(st.SegmentPath(s))
			if err != nil {
				t.Fatal(err)
			}
			onDisk += fi.Size()
		}
		cu := u.Cameras[cam]
		if cu.Bytes != onDisk || cu.Segments != len(segs) || onDisk == 0 {
			t.Errorf("%s: usage %d bytes in %d segments, disk holds %d in %d", cam, cu.Bytes, cu.Segments, onDisk, len(segs))
		}
		if !cu.Oldest.Equal(segs[0].Start) || cu.Oldest.Sub(testEpoch.Add(time.Duration(i)*time.Minute)) > time.Second {
			t.Errorf("%s: oldest %v, first segment starts %v", cam, cu.Oldest, segs[0].Start)
		}
		total += onDisk
	}
	if u.SegmentBytes != total {
		t.Errorf("segment bytes %d, want %d", u.SegmentBytes, total)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "index.db")); u.IndexBytes != fi.Size() || u.IndexBytes == 0 {
		t.Errorf("index bytes %d, file %d", u.IndexBytes, fi.Size())
	}

	// Retention marks the oldest door segment deleting: it no longer counts.
	segs := allSegments(t, st, "rec-a/door")
	err = st.db.Update(func(tx *bolt.Tx) error {
		e := entry{File: segs[0].File, Start: segs[0].Start.UnixNano(), End: segs[0].End.UnixNano(), Bytes: segs[0].Bytes, Deleting: true}
		return putEntry(tx, "rec-a/door", &e)
	})
	if err != nil {
		t.Fatal(err)
	}
	u2, err := st.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if d := u2.Cameras["rec-a/door"]; d.Bytes != u.Cameras["rec-a/door"].Bytes-segs[0].Bytes || !d.Oldest.Equal(segs[1].Start) {
		t.Errorf("after marking the first segment deleting: %+v (first %d bytes, second starts %v)", d, segs[0].Bytes, segs[1].Start)
	}
}

func TestEntryBytes(t *testing.T) {
	for _, tc := range []struct {
		v        string
		n        int64
		deleting bool
	}{
		{`{"file":"a/b.mp4","start":1,"end":2,"bytes":12345,"codec":"H264","home":"a","recorded_by":"a"}`, 12345, false},
		{`{"file":"a/b.mp4","start":1,"end":2,"bytes":7,"codec":"","home":"","recorded_by":"","deleting":true}`, 7, true},
		{`{"bytes":99}`, 99, false},
		{`{"file":"x","bytes": 5}`, 5, false}, // not putEntry's spacing: full decode
	} {
		n, del, err := entryBytes([]byte(tc.v))
		if err != nil || n != tc.n || del != tc.deleting {
			t.Errorf("entryBytes(%s) = %d, %v, %v; want %d, %v", tc.v, n, del, err, tc.n, tc.deleting)
		}
	}
	if _, _, err := entryBytes([]byte(`not json`)); err == nil {
		t.Error("garbage entry decoded")
	}
}

// BenchmarkUsage measures the index walk at a month of one-minute segments
// for 10 cameras (432 000 entries).
func BenchmarkUsage(b *testing.B) {
	st := openTestStore(b, b.TempDir(), nil)
	const cams, perCam = 10, 30 * 24 * 60
	err := st.db.Update(func(tx *bolt.Tx) error {
		for c := range cams {
			cam := "rec-a/cam" + string(rune('0'+c))
			for i := range perCam {
				start := testEpoch.Add(time.Duration(i) * time.Minute)
				e := entry{File: cam + "/" + start.Format("2006-01-02/15-04-05.000") + "-rec-a.mp4", Start: start.UnixNano(), End: start.Add(time.Minute).UnixNano(), Bytes: 15e6, Codec: "H264+AAC", Home: "rec-a", RecordedBy: "rec-a"}
				if err := putEntry(tx, cam, &e); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		u, err := st.Usage()
		if err != nil || len(u.Cameras) != cams {
			b.Fatal(err, len(u.Cameras))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(cams*perCam), "ns/entry")
}
