//go:build linux

package recorder

import (
	"fmt"
	"syscall"
)

// reserve maps size bytes of anonymous private memory outside the Go
// heap: the collector neither scans it nor counts it toward its goal.
// MAP_NORESERVE: pages cost memory only once written, so a reservation
// as large as the ring's byte bound costs what the ring holds.
func reserve(size int) ([]byte, error) {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("reserve %d bytes for a hot standby ring: %w", size, err)
	}
	return mem, nil
}

// release returns whole pages to the operating system; they read as
// zeros when touched again.
func release(pages []byte) {
	_ = syscall.Madvise(pages, syscall.MADV_DONTNEED)
}

func unreserve(mem []byte) {
	_ = syscall.Munmap(mem)
}
