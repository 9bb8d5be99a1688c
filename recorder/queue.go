package recorder

import "sync"

// itemQueue is the samples waiting for one session's writer: a FIFO that
// never blocks its producer and holds at most limit items.
//
// Why not a channel of limit items: a channel reserves its whole buffer
// up front, and its send and receive positions walk through all of it,
// so every session kept limit items' worth of memory resident (512 × 80
// bytes, 40 KiB) although a writer that keeps up has a frame or two
// waiting. A hot standby holds dozens of sessions whose only other cost
// is what their rings hold, so that buffer was a tenth of what each one
// cost. Here the buffer follows what waits: it starts at minQueue items,
// doubles up to limit while the writer is behind (a disk stall), and is
// given back once the queue has drained.
//
// Invariants: 0 <= n <= limit; len(buf) is 0 or a power of two at least
// minQueue and n <= len(buf); the items waiting are buf[(head+i) %
// len(buf)] for i < n, and every other slot is zero, so the buffer keeps
// no payload alive. ready holds a token whenever n > 0 and the consumer
// may be waiting; a token with n == 0 is harmless (the consumer finds
// nothing and waits again).
type itemQueue struct {
	mu    sync.Mutex
	buf   []item
	head  int
	n     int
	limit int
	ready chan struct{}
}

// minQueue is the buffer a queue starts with: a writer that keeps up has
// at most a few samples waiting, and 16 are 1.3 KiB.
const minQueue = 16

func newItemQueue(limit int) *itemQueue {
	return &itemQueue{limit: max(limit, 1), ready: make(chan struct{}, 1)}
}

// push adds it at the back and tells whether it fit: a full queue refuses
// (the caller counts a dropped frame), it never waits.
func (q *itemQueue) push(it item) bool {
	q.mu.Lock()
	if q.n >= q.limit {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = it
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // a token is waiting already
	}
	return true
}

// grow doubles the buffer (from minQueue), in FIFO order from index 0.
// The last doubling may go beyond limit: limit bounds the items, not the
// buffer, which stays a power of two.
func (q *itemQueue) grow() {
	size := max(minQueue, 2*len(q.buf))
	buf := make([]item, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}

// pop takes the front item; false when the queue is empty. An emptied
// queue whose buffer had grown gives it back, so one stall does not
// cost its peak for the rest of the session.
func (q *itemQueue) pop() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return item{}, false
	}
	it := q.buf[q.head]
	q.buf[q.head] = item{}
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > minQueue {
			q.buf = nil
		}
	}
	return it, true
}
