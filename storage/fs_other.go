//go:build !linux

package storage

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

// writeBuffers writes bufs to f one after the other.
func writeBuffers(f *os.File, bufs [][]byte) (int64, error) {
	var n int64
	for _, b := range bufs {
		m, err := f.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
