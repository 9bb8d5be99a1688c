package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

func TestVMRSS(t *testing.T) {
	status := "Name:\tbuddyrec\nVmPeak:\t 1200000 kB\nVmRSS:\t   25432 kB\nRssAnon:\t 20000 kB\n"
	if got := vmRSS(status); got != 25432*1024 {
		t.Errorf("vmRSS = %d, want %d", got, 25432*1024)
	}
	for _, bad := range []string{"", "VmRSS: lots kB\n", "VmRSS: 12 MB\n"} {
		if got := vmRSS(bad); got != 0 {
			t.Errorf("vmRSS(%q) = %d, want 0", bad, got)
		}
	}
}

// TestFiguresAreReal: the memory a server reports is its resident set
// (not a rounded step), its storage figures are buddyrec's own files, and
// per camera the footage it holds is what its segment files take.
func TestFiguresAreReal(t *testing.T) {
	cams := testutil.Cameras(t, camsim.Options{Cameras: 1})
	n, _ := startNode(t, "rec-a", fmt.Sprintf("[storage]\nsegment = \"2s\"\npart = \"500ms\"\n[[camera]]\nname = \"lobby\"\nurl = %q\n", cams.URL(1)))
	waitFor(t, 10*time.Second, "recording", func() bool { return cameraStates(t, n)["rec-a/lobby"].State == "recording" })
	time.Sleep(5 * time.Second)

	// Memory: the answer against VmRSS read just before and after.
	before := residentBytes()
	var cl api.Cluster
	getJSON(t, n, "/api/v1/cluster", &cl)
	after := residentBytes()
	self := cl.Servers[0]
	lo, hi := min(before, after), max(before, after)
	if m := self.Load.MemoryBytes; m+2<<20 < lo || m > hi+2<<20 {
		t.Errorf("cluster answer says %d bytes of memory; VmRSS was %d..%d", m, lo, hi)
	}
	t.Logf("memory %.1f MB (VmRSS %.1f..%.1f MB)", float64(self.Load.MemoryBytes)/1e6, float64(lo)/1e6, float64(hi)/1e6)

	// Storage: the walk is cached; force a fresh one for the check.
	n.refreshUsage()
	var cs api.Cameras
	getJSON(t, n, "/api/v1/cameras", &cs)
	var files int64
	var first time.Time
	err := filepath.WalkDir(filepath.Join(n.cfg.DataDir, "rec-a", "lobby"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".mp4") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	segs, err := n.store.Segments("rec-a/lobby", time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil || len(segs) < 2 {
		t.Fatalf("segments: %d, %v", len(segs), err)
	}
	first = segs[0].Start
	f := cs.Footage["rec-a/lobby"]
	// The open segment grows between the walk and the file sizes: allow
	// one part of it.
	if f.Bytes == 0 || int64(f.Bytes) > files || files-int64(f.Bytes) > 2e6 {
		t.Errorf("footage says %d bytes; the camera's files hold %d", f.Bytes, files)
	}
	if !f.Oldest.Equal(first) {
		t.Errorf("oldest footage %v, first segment starts %v", f.Oldest, first)
	}
	if cs.Load == nil || cs.Load.RecordingBytes < f.Bytes || cs.Load.DiskTotal == 0 || cs.Load.DiskUsed < cs.Load.RecordingBytes {
		t.Errorf("load in the cameras answer: %+v", cs.Load)
	}
}
