package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteBuffers(t *testing.T) {
	many := func(n, size int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = bytes.Repeat([]byte{byte(i)}, size)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		bufs [][]byte
	}{
		{"none", nil},
		{"one", [][]byte{[]byte("moof")}},
		{"empty ones between", [][]byte{nil, []byte("ab"), {}, []byte("cd"), nil}},
		{"a fragment: header and payloads", append([][]byte{make([]byte, 600)}, many(75, 3000)...)},
		{"more than one writev takes", many(2500, 7)},
		{"large payloads", many(3, 3<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg.mp4")
			f, err := OSFS{}.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			before := make([][]byte, len(tc.bufs))
			copy(before, tc.bufs)
			n, err := writeFragment(f, tc.bufs)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			want := bytes.Join(tc.bufs, nil)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(want)) || !bytes.Equal(got, want) {
				t.Fatalf("wrote %d bytes (file %d), want %d, same bytes %v", n, len(got), len(want), bytes.Equal(got, want))
			}
			for i := range before {
				if len(before[i]) != len(tc.bufs[i]) {
					t.Fatalf("the caller's buffer %d changed length: %d, was %d", i, len(tc.bufs[i]), len(before[i]))
				}
			}
		})
	}
}

func TestWriteBuffersError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n, err := writeFragment(osFile{ro}, [][]byte{[]byte("moof"), []byte("mdat")})
	var pe *os.PathError
	if err == nil || n != 0 || !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("write to a read-only file: %d, %v; want 0 and an error naming %s", n, err, path)
	}
}
