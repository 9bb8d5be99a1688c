package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/buddyrec/buddyrec/internal/testutil"
)

// copyTo copies the file of seg in st into dir/name, as a backfill would.
func copyTo(t *testing.T, st *Store, seg Segment, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(st.SegmentPath(seg))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImportKeepsProvenanceAndSurvivesReopen: a segment rec-b recorded of
// rec-a's camera, copied into rec-a's data dir, is indexed as rec-a's
// footage recorded by rec-b, plays, and is still indexed (once) after a
// reopen; importing it again changes nothing.
func TestImportKeepsProvenanceAndSurvivesReopen(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	buddy := openTestStore(t, t.TempDir(), func(o *Options) { o.Server = "rec-b" })
	recordAt(t, buddy, c, "rec-a/cam1", testEpoch)
	peerSegs := allSegments(t, buddy, "rec-a/cam1")
	if len(peerSegs) < 2 {
		t.Fatalf("want several segments on the buddy, got %d", len(peerSegs))
	}

	homeDir := t.TempDir()
	home := openTestStore(t, homeDir, nil)
	tmp := filepath.Join(homeDir, ".backfill")
	for i, seg := range peerSegs {
		got, err := home.Import(seg, copyTo(t, buddy, seg, tmp, "copy.part"))
		if err != nil {
			t.Fatalf("import segment %d: %v", i, err)
		}
		if got.Home != "rec-a" || got.RecordedBy != "rec-b" || got.Bytes != seg.Bytes || !got.Start.Equal(seg.Start) || !got.End.Equal(seg.End) || got.Codec != seg.Codec {
			t.Errorf("imported %+v, want the buddy's %+v", got, seg)
		}
		a, _ := os.ReadFile(home.SegmentPath(got))
		b, _ := os.ReadFile(buddy.SegmentPath(seg))
		if !bytes.Equal(a, b) {
			t.Errorf("segment %d: imported file differs from the buddy's", i)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "copy.part")); !os.IsNotExist(err) {
		t.Errorf("the copy is still in the temp folder: %v", err)
	}
	// Again: already there, nothing new.
	again, err := home.Import(peerSegs[0], copyTo(t, buddy, peerSegs[0], tmp, "again.part"))
	if err != nil || again.File != allSegments(t, home, "rec-a/cam1")[0].File {
		t.Fatalf("second import: %+v, %v", again, err)
	}
	if n := len(allSegments(t, home, "rec-a/cam1")); n != len(peerSegs) {
		t.Errorf("after a second import the home holds %d segments, want %d", n, len(peerSegs))
	}
	if _, err := os.Stat(filepath.Join(tmp, "again.part")); !os.IsNotExist(err) {
		t.Errorf("a duplicate copy was left behind: %v", err)
	}

	if _, ok := testutil.LookTool(t, "ffprobe"); ok {
		p := ffprobe(t, home.SegmentPath(allSegments(t, home, "rec-a/cam1")[0]))
		if _, frames, _, ok := p.stream("video"); !ok || frames == 0 {
			t.Errorf("imported segment does not play: %+v", p)
		}
	}

	home.Close()
	reopened := openTestStore(t, homeDir, nil)
	segs := checkConsistent(t, reopened, homeDir)
	if len(segs) != len(peerSegs) {
		t.Fatalf("after reopen: %d segments, want %d", len(segs), len(peerSegs))
	}
	for _, s := range segs {
		if s.RecordedBy != "rec-b" || s.Home != "rec-a" {
			t.Errorf("after reopen %s is home=%s recorded_by=%s", s.File, s.Home, s.RecordedBy)
		}
	}
}

// TestImportRefusesIncompleteFile: a torn copy is never indexed.
func TestImportRefusesIncompleteFile(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	buddy := openTestStore(t, t.TempDir(), func(o *Options) { o.Server = "rec-b" })
	recordAt(t, buddy, c, "rec-a/cam1", testEpoch)
	seg := allSegments(t, buddy, "rec-a/cam1")[0]
	homeDir := t.TempDir()
	home := openTestStore(t, homeDir, nil)
	p := copyTo(t, buddy, seg, filepath.Join(homeDir, ".backfill"), "torn.part")
	if err := os.Truncate(p, seg.Bytes-100); err != nil {
		t.Fatal(err)
	}
	if _, err := home.Import(seg, p); err == nil {
		t.Fatal("a torn copy was imported")
	}
	if segs := allSegments(t, home, "rec-a/cam1"); len(segs) != 0 {
		t.Errorf("index claims a torn copy: %+v", segs)
	}
	if _, err := home.Import(Segment{Camera: "rec-a/cam1", Home: "rec-c", RecordedBy: "rec-b", Start: seg.Start}, copyTo(t, buddy, seg, filepath.Join(homeDir, ".backfill"), "x.part")); err == nil {
		t.Error("a segment whose home is not the camera's was imported")
	}
}
