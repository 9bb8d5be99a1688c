package worker

import (
	"encoding/json"
	"sync"
)

// Queue carries a worker's index updates to the supervisor, the only
// writer of index.db. Each update gets a sequence number; the supervisor
// asks for the updates after the last one it applied, which acknowledges
// (and frees) everything up to it. While no supervisor listens (it crashed,
// or is restarting) updates accumulate up to Max; beyond that the oldest
// are dropped and Lost is set, and the supervisor then indexes from the
// files themselves (the files are the truth: its recovery scan finds what
// the index lacks).
type Queue struct {
	// Max bounds the updates held (default 100 000, a few hours of a
	// full worker's parts).
	Max int

	mu    sync.Mutex
	first uint64 // sequence number of items[0]
	items []json.RawMessage
	lost  bool
	wake  chan struct{}
}

// Push queues updates (JSON values the supervisor's Apply understands),
// all at once: a request sees the whole of one sync round, so the
// supervisor commits it in one transaction.
func (q *Queue) Push(us ...json.RawMessage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range us {
		q.pushLocked(u)
	}
	if q.wake != nil && len(us) > 0 {
		close(q.wake)
		q.wake = nil
	}
}

func (q *Queue) pushLocked(u json.RawMessage) {
	max := q.Max
	if max <= 0 {
		max = 100_000
	}
	if q.first == 0 {
		q.first = 1
	}
	if len(q.items) >= max {
		drop := len(q.items) - max + 1
		clear(q.items[:drop])
		q.items = q.items[drop:]
		q.first += uint64(drop)
		q.lost = true
	}
	q.items = append(q.items, u)
}

// Batch is what the supervisor gets for one request.
type Batch struct {
	// Updates follow the one numbered After in the request, in order.
	Updates []json.RawMessage `json:"updates"`
	// Next is the sequence number of the last update returned (or After
	// when none): the After of the next request.
	Next uint64 `json:"next"`
	// Lost says updates after After were dropped before the supervisor
	// fetched them: it must index this worker's cameras from their files.
	Lost bool `json:"lost,omitempty"`
}

// Since frees the updates up to after (applied by the supervisor) and
// returns those after it, at most limit. wait is closed when more arrive.
func (q *Queue) Since(after uint64, limit int) (b Batch, wait <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.first == 0 {
		q.first = 1
	}
	if after >= q.first {
		n := int(min(after-q.first+1, uint64(len(q.items))))
		clear(q.items[:n])
		q.items = q.items[n:]
		q.first += uint64(n)
	}
	// updates before first were either applied (acknowledged by this or
	// an earlier supervisor) or dropped, which lost says
	b.Next = after
	b.Lost, q.lost = q.lost, false
	start := 0
	if after+1 > q.first {
		start = int(after + 1 - q.first)
	}
	if start < len(q.items) {
		end := min(len(q.items), start+limit)
		b.Updates = append([]json.RawMessage(nil), q.items[start:end]...)
		b.Next = q.first + uint64(end) - 1
	} else if after+1 < q.first {
		b.Next = q.first - 1
	}
	if len(b.Updates) == 0 {
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		wait = q.wake
	}
	return b, wait
}

// Len is the number of updates not yet acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
