//go:build !linux

package storage

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

// writeBuffers writes bufs to f one after the other.
func writeBuffers(f *os.File, bufs [][]byte) (int64, error) { return writeEach(f, bufs) }
