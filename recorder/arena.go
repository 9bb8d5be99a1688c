package recorder

import "os"

// payloadArena holds the payloads of one hot standby ring: a byte FIFO
// in one circular buffer reserved once per session, outside the Go heap
// where the platform allows it (see arena_linux.go).
//
// Why not keep the samples the camera session allocated: a hot standby
// does nothing with its samples but hold them, for seconds, and a heap
// that is mostly such long-lived bytes costs twice their size, because
// the collector lets the heap grow to twice what is live (GOGC 100)
// before it collects, and per-sample allocations add their size-class
// rounding. Copied here, each payload the session allocated dies at once
// (only the ring would have kept it), and the ring costs what it holds:
//
//   - Pages are touched only as bytes are written, and returned to the
//     operating system (madvise MADV_DONTNEED) as soon as eviction leaves
//     them behind, so the resident size follows what is held to within
//     two pages, however large the reservation.
//   - No allocation per sample: a write copies into the buffer at head,
//     wrapping at its end.
//   - The reservation starts small and doubles when what is held needs
//     it (up to the ring's byte bound), so its address space and commit
//     charge stay within twice the most the ring held; it is released
//     (munmap) when the session ends.
//
// Invariants: tail <= head, head-tail <= limit (the bytes held); head -
// (tail rounded down to a page) + a page <= size, so that no live byte
// shares a physical page with one being released or written; and the
// pages from the one holding tail to the one holding head-1 are the only
// ones that may be resident. Bytes never leave the arena by reference:
// read copies them onto the heap, so nothing can point into it once it
// is released.
type payloadArena struct {
	mem     []byte // the reservation (len size); nil until the first write
	size    int64  // a multiple of the page size
	maxSize int64  // what limit bytes need: the largest reservation
	limit   int64  // the most bytes held at once
	head    int64  // logical position of the next byte written
	tail    int64  // logical position of the oldest byte held
}

var pageSize = int64(os.Getpagesize())

// initialArena is the first reservation: a quarter second of a
// 8 Mbit/s camera; it doubles as needed.
const initialArena = 256 << 10

// newPayloadArena is an arena that holds up to limit bytes. Nothing is
// reserved before the first write.
func newPayloadArena(limit int) *payloadArena {
	maxSize := (int64(limit) + 3*pageSize - 1) / pageSize * pageSize // limit, rounded up, + a page for tail's + a margin
	return &payloadArena{maxSize: maxSize, limit: int64(limit)}
}

// fits tells whether n more bytes can be written.
func (a *payloadArena) fits(n int) bool { return a.head-a.tail+int64(n) <= a.limit }

// write copies p in at head and returns its position; the caller made
// room (fits) first.
func (a *payloadArena) write(p []byte) (int64, error) {
	if !a.fits(len(p)) {
		panic("recorder: payload arena overfilled") // the ring checks fits first
	}
	if need := a.head + int64(len(p)) - a.tail/pageSize*pageSize + pageSize; a.mem == nil || need > a.size {
		if err := a.grow(need); err != nil {
			return 0, err
		}
	}
	pos := a.head
	off := pos % a.size
	n := copy(a.mem[off:], p)
	copy(a.mem, p[n:])
	a.head += int64(len(p))
	return pos, nil
}

// writeAll writes bufs one after another as one payload (a sample's
// pieces) and returns its position; the caller made sure that all of them
// fit.
func (a *payloadArena) writeAll(bufs [][]byte) (int64, error) {
	pos := a.head
	for _, p := range bufs {
		if _, err := a.write(p); err != nil {
			return 0, err
		}
	}
	return pos, nil
}

// grow moves what is held into a reservation of at least need bytes (the
// current size doubled, within maxSize), keeping every logical position.
func (a *payloadArena) grow(need int64) error {
	size := max(a.size, min(initialArena/pageSize*pageSize, a.maxSize))
	for size < need {
		size = min(2*size, a.maxSize)
	}
	if a.mem != nil && size == a.size {
		return nil
	}
	mem, err := reserve(int(size))
	if err != nil {
		return err
	}
	for x := a.tail; x < a.head; {
		src, dst := x%a.size, x%size
		n := min(a.head-x, a.size-src, size-dst)
		copy(mem[dst:dst+n], a.mem[src:src+n])
		x += n
	}
	if a.mem != nil {
		unreserve(a.mem)
	}
	a.mem, a.size = mem, size
	return nil
}

// read copies the n bytes at pos onto the heap.
func (a *payloadArena) read(pos int64, n int) []byte {
	out := make([]byte, n)
	off := pos % a.size
	m := copy(out, a.mem[off:])
	copy(out[m:], a.mem)
	return out
}

// discard forgets the bytes before pos and returns the pages that held
// only those to the operating system.
func (a *payloadArena) discard(pos int64) {
	if pos <= a.tail {
		return
	}
	if pos > a.head {
		panic("recorder: payload arena discards beyond its head")
	}
	from, to := a.tail/pageSize*pageSize, pos/pageSize*pageSize
	a.tail = pos
	a.releaseRange(from, to)
}

// reset forgets everything held; the reservation stays for reuse.
func (a *payloadArena) reset() {
	if a.mem != nil && a.head > a.tail {
		from, to := a.tail/pageSize*pageSize, (a.head+pageSize-1)/pageSize*pageSize
		a.releaseRange(from, to)
	}
	a.tail = a.head
}

// releaseRange returns the pages of logical positions [from, to), both
// page-aligned, to the operating system.
func (a *payloadArena) releaseRange(from, to int64) {
	if a.mem == nil || to <= from {
		return
	}
	if to-from >= a.size {
		release(a.mem)
		return
	}
	f, t := from%a.size, to%a.size
	if f < t {
		release(a.mem[f:t])
		return
	}
	release(a.mem[f:])
	if t > 0 {
		release(a.mem[:t])
	}
}

// resident is an upper bound of the arena's resident bytes: the pages
// from tail's to head's.
func (a *payloadArena) resident() int64 {
	if a.mem == nil || a.head == a.tail {
		return 0
	}
	return min((a.head+pageSize-1)/pageSize*pageSize-a.tail/pageSize*pageSize, a.size)
}

// close gives the reservation back; the arena is empty and reusable after.
func (a *payloadArena) close() {
	if a.mem != nil {
		unreserve(a.mem)
		a.mem, a.size = nil, 0
	}
	a.tail = a.head
}
