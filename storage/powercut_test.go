package storage

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// powerFS is the OS file layer with a power switch: PowerCut puts every
// file and folder back to what its last sync made durable (data written
// after a file's last Sync is lost, entries created after a folder's last
// SyncDir vanish) and fails every later operation, as a machine that lost
// power would.
type powerFS struct {
	mu      sync.Mutex
	off     bool
	files   map[string]*powerFile
	made    []string            // folders made, in order
	undone  map[string][]string // folder -> entries created since its last sync
	durable map[string]bool     // entries (files, folders) made durable
}

func newPowerFS() *powerFS {
	return &powerFS{files: map[string]*powerFile{}, undone: map[string][]string{}, durable: map[string]bool{}}
}

var errPowerOff = &os.PathError{Op: "write", Path: "power", Err: syscall.EIO}

func (p *powerFS) Mkdir(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return errPowerOff
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	p.made = append(p.made, path)
	p.undone[filepath.Dir(path)] = append(p.undone[filepath.Dir(path)], path)
	return nil
}

func (p *powerFS) Create(path string) (File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return nil, errPowerOff
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	pf := &powerFile{fs: p, f: f, path: path}
	p.files[path] = pf
	p.undone[filepath.Dir(path)] = append(p.undone[filepath.Dir(path)], path)
	return pf, nil
}

func (p *powerFS) SyncDir(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return errPowerOff
	}
	for _, e := range p.undone[path] {
		p.durable[e] = true
	}
	delete(p.undone, path)
	return nil
}

// PowerCut loses everything not synced and switches the layer off.
func (p *powerFS) PowerCut(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.off = true
	for path, f := range p.files {
		if !p.durable[path] {
			os.Remove(path)
			continue
		}
		for i := len(f.patches) - 1; i >= 0; i-- {
			pt := f.patches[i]
			if _, err := f.f.WriteAt(pt.old, pt.off); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Truncate(path, f.synced); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	for i := len(p.made) - 1; i >= 0; i-- {
		if !p.durable[p.made[i]] {
			os.RemoveAll(p.made[i])
		}
	}
}

type patch struct {
	off int64
	old []byte
}

type powerFile struct {
	fs      *powerFS
	f       *os.File
	path    string
	size    int64
	synced  int64
	patches []patch // overwrites of synced bytes since the last sync
}

func (f *powerFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.off {
		return 0, errPowerOff
	}
	n, err := f.f.WriteAt(b, f.size)
	f.size += int64(n)
	return n, err
}

func (f *powerFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.off {
		return 0, errPowerOff
	}
	if off < f.synced {
		end := min(off+int64(len(b)), f.synced)
		old := make([]byte, end-off)
		if _, err := f.f.ReadAt(old, off); err != nil {
			return 0, err
		}
		f.patches = append(f.patches, patch{off: off, old: old})
	}
	n, err := f.f.WriteAt(b, off)
	f.size = max(f.size, off+int64(n))
	return n, err
}

func (f *powerFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.off {
		return errPowerOff
	}
	f.size = size
	f.synced = min(f.synced, size)
	return f.f.Truncate(size)
}

func (f *powerFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.off {
		return errPowerOff
	}
	f.synced = f.size
	f.patches = nil
	return nil
}

func (f *powerFile) Close() error { return f.f.Close() }

// indexWithinData asserts that no index entry in dir claims footage or
// bytes its file does not hold.
func indexWithinData(t *testing.T, dir, when string) (entries int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		return forEachCamera(tx, func(camera string, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				e, err := decodeEntry(v)
				if err != nil {
					t.Errorf("%s: undecodable entry: %v", when, err)
					return nil
				}
				entries++
				claimed := time.Duration(e.End - e.Start)
				if e.Deleting || claimed == 0 {
					return nil
				}
				res, err := scanSegment(filepath.Join(dir, e.File))
				if err != nil {
					t.Errorf("%s: index claims %v of %s, file unreadable: %v", when, claimed, e.File, err)
					return nil
				}
				if res.duration < claimed || res.goodSize < e.Bytes {
					t.Errorf("%s: index claims %v (%d bytes, open=%v) of %s, the disk holds %v (%d bytes)",
						when, claimed, e.Bytes, e.Open, e.File, res.duration, res.goodSize)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestPowerCutIndexNeverPastData records three cameras through a file
// layer that forgets everything not synced, cuts the power at a random
// point (sync rounds also at random points), and checks that the index
// as committed never claims more than the disk kept, before and after
// recovery, and that what recovery keeps plays.
func TestPowerCutIndexNeverPastData(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	cams := []string{"rec-a/a", "rec-a/b", "rec-b/c"}
	for iter := range 8 {
		dir := t.TempDir()
		pfs := newPowerFS()
		st, err := Open(Options{Dir: dir, Server: "rec-a", Segment: 3 * time.Second, Part: 500 * time.Millisecond,
			SyncInterval: time.Hour, FS: pfs})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(iter), 7))
		streams := make([][]Sample, len(cams))
		writers := make([]*Writer, len(cams))
		for i, cam := range cams {
			streams[i] = c.stream(testEpoch.Add(time.Duration(i)*300*time.Millisecond), 2, true)
			writers[i], err = st.Begin(Stream{Camera: cam, Home: cam[:5], Tracks: c.tracks(true)})
			if err != nil {
				t.Fatal(err)
			}
		}
		n := len(streams[0])
		cutAt := n/4 + rng.IntN(3*n/4)
		closeAt := -1
		if iter%2 == 1 {
			closeAt = rng.IntN(cutAt) // one camera's stream ends before the cut
		}
		for i := 0; i < cutAt; i++ {
			for j, w := range writers {
				if w == nil || i >= len(streams[j]) {
					continue
				}
				w.Write(streams[j][i]) //nolint:errcheck // alarms are not under test
				if j == 1 && i == closeAt {
					w.Close()
					writers[j] = nil
				}
			}
			if rng.IntN(60) == 0 {
				st.Sync() //nolint:errcheck
			}
		}
		pfs.PowerCut(t)
		st.Close() // the last round meets the dead disk and commits nothing it did not sync
		if indexWithinData(t, dir, "after the power cut") == 0 && cutAt > n/2 {
			t.Errorf("iteration %d: nothing indexed before the cut", iter)
		}

		st2, err := Open(Options{Dir: dir, Server: "rec-a"})
		if err != nil {
			t.Fatal(err)
		}
		segs := checkConsistent(t, st2, dir)
		st2.Close()
		indexWithinData(t, dir, "after recovery")
		if iter == 0 {
			sort.Slice(segs, func(i, j int) bool { return segs[i].File < segs[j].File })
			for _, s := range segs {
				ffprobe(t, filepath.Join(dir, s.File))
			}
		}
		t.Logf("iteration %d: cut after %d of %d samples per camera, %d segments kept", iter, cutAt, n, len(segs))
	}
}

// TestRecoveryChecksClosedTail cuts the tail off the newest closed
// segment (as a file system that lost unsynced data would) and checks
// that recovery shortens its index entry to what the file holds.
func TestRecoveryChecksClosedTail(t *testing.T) {
	c := loadClip(t, "../testdata/h264-aac.ts")
	dir := t.TempDir()
	st := openTestStore(t, dir, nil)
	w, err := st.Begin(Stream{Camera: "rec-a/door", Home: "rec-a", Tracks: c.tracks(true)})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, c.stream(testEpoch, 1, true))
	w.Close()
	segs := allSegments(t, st, "rec-a/door")
	st.Close()
	last := segs[len(segs)-1]
	p := filepath.Join(dir, last.File)
	if err := os.Truncate(p, last.Bytes-2000); err != nil {
		t.Fatal(err)
	}
	st2 := openTestStore(t, dir, nil)
	got := checkConsistent(t, st2, dir)
	if len(got) != len(segs) {
		t.Fatalf("segments %d, want %d", len(got), len(segs))
	}
	fixed := got[len(got)-1]
	fi, _ := os.Stat(p)
	if !fixed.End.Before(last.End) || fixed.Bytes != fi.Size() {
		t.Errorf("short segment indexed to %v (%d bytes), was %v; file %d bytes", fixed.End, fixed.Bytes, last.End, fi.Size())
	}
	st2.Close()
	indexWithinData(t, dir, "after recovery")
	ffprobe(t, p)
}
