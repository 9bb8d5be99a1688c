package storage

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// barrierFS is the OS file layer whose fdatasync calls wait for each
// other: each holds until want of them are in flight together (or a
// second has passed), so that the most ever in flight is what the syncer
// let start at once, not what the scheduler happened to overlap.
type barrierFS struct {
	OSFS
	mu             sync.Mutex
	want           int
	inFlight, most int
}

func (fs *barrierFS) Create(path string) (File, error) {
	f, err := fs.OSFS.Create(path)
	if err != nil {
		return nil, err
	}
	return barrierFile{File: f, fs: fs}, nil
}

func (fs *barrierFS) setWant(n int) {
	fs.mu.Lock()
	fs.want = n
	fs.mu.Unlock()
}

func (fs *barrierFS) mostInFlight() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.most
}

type barrierFile struct {
	File
	fs *barrierFS
}

func (f barrierFile) Sync() error {
	fs := f.fs
	fs.mu.Lock()
	fs.inFlight++
	fs.most = max(fs.most, fs.inFlight)
	fs.mu.Unlock()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		fs.mu.Lock()
		done := fs.inFlight >= fs.want
		fs.mu.Unlock()
		if done {
			break
		}
	}
	err := f.File.Sync()
	fs.mu.Lock()
	fs.inFlight--
	fs.mu.Unlock()
	return err
}

// TestSyncRoundParallelism: a round starts as many fdatasync calls at once
// as Options.SyncParallelism allows (DefaultSyncParallelism unless set),
// and all of them when the files are fewer: what a worker process, whose
// one P each blocked call holds until the runtime retakes it, relies on
// to sync a round in one wave (worker.workerSyncParallelism).
func TestSyncRoundParallelism(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	samples := c.stream(testEpoch, 1, true)
	for _, tc := range []struct {
		parallelism, files, want int
	}{
		{parallelism: 0, files: 20, want: DefaultSyncParallelism},
		{parallelism: 64, files: 20, want: 20},
		{parallelism: 4, files: 8, want: 4},
		{parallelism: 64, files: 3, want: 3},
	} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.parallelism, tc.files), func(t *testing.T) {
			fs := &barrierFS{want: tc.files}
			st := openTestStore(t, t.TempDir(), func(o *Options) {
				o.FS = fs
				o.SyncParallelism = tc.parallelism
				o.SyncInterval = time.Hour // one round, the test's own
				o.Segment = time.Hour      // one file per camera
			})
			var ws []*Writer
			for i := range tc.files {
				w, err := st.Begin(Stream{Camera: fmt.Sprintf("rec-a/cam%d", i+1), Home: "rec-a", Tracks: c.tracks(true)})
				if err != nil {
					t.Fatal(err)
				}
				writeAll(t, w, samples)
				ws = append(ws, w)
			}
			if err := st.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := fs.mostInFlight(); got != tc.want {
				t.Errorf("%d fdatasync calls in flight at once in a round of %d files with SyncParallelism %d, want %d", got, tc.files, tc.parallelism, tc.want)
			}
			fs.setWant(0) // the closing rounds hold nothing
			for _, w := range ws {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tc.files {
				if segs := allSegments(t, st, fmt.Sprintf("rec-a/cam%d", i+1)); len(segs) == 0 {
					t.Errorf("rec-a/cam%d: nothing indexed", i+1)
				}
			}
		})
	}
}
