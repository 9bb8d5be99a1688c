package storage

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// FS is the file layer segment files are written through. The real one is
// the operating system's; tests substitute one that forgets what was not
// synced, to check that the index never claims more than a power cut
// leaves on disk.
type FS interface {
	// Mkdir creates one folder; it returns an error wrapping os.ErrExist
	// when the folder is already there.
	Mkdir(path string) error
	// Create creates a new file exclusively (os.ErrExist if it exists).
	Create(path string) (File, error)
	// SyncDir makes the entries of a folder (files and folders created in
	// it) durable.
	SyncDir(path string) error
}

// File is an open segment file.
type File interface {
	io.Writer
	io.WriterAt
	Truncate(size int64) error
	// Sync makes the data written so far durable (fdatasync).
	Sync() error
	Close() error
}

// OSFS is the operating system's file layer.
type OSFS struct{}

// Mkdir implements FS.
func (OSFS) Mkdir(path string) error { return os.Mkdir(path, 0o755) }

// Create implements FS.
func (OSFS) Create(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// SyncDir implements FS.
func (OSFS) SyncDir(path string) error { return syncDir(path) }

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// osFile syncs with fdatasync: segment files only grow, so the size is the
// only metadata that matters and fdatasync keeps it.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return fdatasync(f.File) }

// WriteBuffers writes bufs in order with as few system calls as the
// system allows (writev on Linux): a fragment is its header and every
// sample's payload, and one call per payload (75 a second per camera)
// costs more CPU than the copying it saves.
func (f osFile) WriteBuffers(bufs [][]byte) (int64, error) { return writeBuffers(f.File, bufs) }

// buffersWriter is a File that writes many buffers at once (osFile).
type buffersWriter interface {
	WriteBuffers(bufs [][]byte) (int64, error)
}

// writeFragment writes bufs to f in order: in one writev when f can, else one
// Write per buffer. It returns the bytes written.
func writeFragment(f File, bufs [][]byte) (int64, error) {
	if bw, ok := f.(buffersWriter); ok {
		return bw.WriteBuffers(bufs)
	}
	return writeEach(f, bufs)
}

// writeEach writes bufs to w one Write per buffer.
func writeEach(w io.Writer, bufs [][]byte) (int64, error) {
	var n int64
	for _, b := range bufs {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// createIn creates the file rel below root through fsys, making the
// folders on its way. It returns the folders whose entries changed (the
// file's folder and the parent of every folder it made), which must be
// synced before an index commit names the file.
func createIn(fsys FS, root, rel string) (File, []string, error) {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	dirty := []string{}
	dir := root
	for _, p := range parts[:len(parts)-1] {
		next := filepath.Join(dir, p)
		if err := fsys.Mkdir(next); err == nil {
			dirty = append(dirty, dir)
		} else if !errors.Is(err, os.ErrExist) {
			return nil, nil, err
		}
		dir = next
	}
	f, err := fsys.Create(filepath.Join(root, rel))
	if err != nil {
		return nil, nil, err
	}
	return f, append(dirty, dir), nil
}

// unwritten is what of bufs is left after a short write of n bytes. It
// copies the slice headers and never changes bufs.
func unwritten(bufs [][]byte, n int64) [][]byte {
	rest := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		switch {
		case n >= int64(len(b)):
			n -= int64(len(b))
		case n > 0:
			rest = append(rest, b[n:])
			n = 0
		default:
			rest = append(rest, b)
		}
	}
	return rest
}
