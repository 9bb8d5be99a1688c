package boltfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

var (
	bucket = []byte("b")
	errOwn = errors.New("not found")
)

func open(t *testing.T, path string, files *[]*os.File) *File {
	t.Helper()
	f, err := Open(path, Options{
		Init: func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err },
		Own:  func(err error) bool { return errors.Is(err, errOwn) },
		Bolt: bolt.Options{OpenFile: func(p string, flag int, mode os.FileMode) (*os.File, error) {
			fd, err := os.OpenFile(p, flag, mode)
			*files = append(*files, fd)
			return fd, err
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func put(f *File, k, v string) error {
	return f.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(k), []byte(v)) })
}

func get(f *File, k string) (string, error) {
	var v string
	err := f.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get([]byte(k))
		if b == nil {
			return errOwn
		}
		v = string(b)
		return nil
	})
	return v, err
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	var files []*os.File
	f := open(t, path, &files)
	if err := put(f, "a", "1"); err != nil {
		t.Fatal(err)
	}
	// The caller's own error does not make the file broken.
	if _, err := get(f, "missing"); !errors.Is(err, errOwn) || f.Broken() {
		t.Fatalf("own error: %v, broken %v", err, f.Broken())
	}
	if did, err := f.Reopen(); did || err != nil {
		t.Fatalf("Reopen of a healthy file: %v %v", did, err)
	}

	files[0].Close() // the file goes bad under bbolt
	if err := put(f, "b", "2"); err == nil {
		t.Fatal("write to a broken file succeeded")
	}
	if !f.Broken() {
		t.Fatal("failed write did not mark the file broken")
	}
	if did, err := f.Reopen(); !did || err != nil {
		t.Fatalf("Reopen: %v %v", did, err)
	}
	if f.Broken() {
		t.Fatal("still broken after the reopen")
	}
	if err := put(f, "b", "2"); err != nil {
		t.Fatalf("write after the reopen: %v", err)
	}
	for k, want := range map[string]string{"a": "1", "b": "2"} {
		if v, err := get(f, k); v != want || err != nil {
			t.Errorf("%s = %q %v, want %q", k, v, err, want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := put(f, "c", "3"); !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		t.Errorf("write after Close: %v", err)
	}
}

func TestLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	var files []*os.File
	open(t, path, &files)
	_, err := Open(path, Options{Bolt: bolt.Options{Timeout: 50e6}})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}
