package recorder

import (
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/storage"
)

func dtsItem(dts int64) item { return item{sample: storage.Sample{DTS: dts, Payload: []byte{1}}} }

// TestItemQueueOrderAndBound: items come out in the order they went in,
// across the buffer's growth and wrap-around; a full queue refuses
// without waiting; the buffer follows what waits and drops back once the
// queue has drained.
func TestItemQueueOrderAndBound(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		pushes    []int // items pushed before each round of pops
		pops      []int // items popped in each round
		wantSizes []int // len(buf) after each round
	}{
		{name: "keeps up", limit: 512, pushes: []int{1, 1, 3, 2}, pops: []int{1, 1, 3, 2}, wantSizes: []int{minQueue, minQueue, minQueue, minQueue}},
		{name: "wraps in its first buffer", limit: 512, pushes: []int{10, 10, 10}, pops: []int{8, 8, 14}, wantSizes: []int{minQueue, minQueue, minQueue}},
		{name: "a stall grows it, the drain gives it back", limit: 512, pushes: []int{100, 0, 5}, pops: []int{60, 40, 5}, wantSizes: []int{128, 0, minQueue}},
		{name: "full refuses", limit: 40, pushes: []int{50, 20}, pops: []int{10, 50}, wantSizes: []int{64, 0}},
		{name: "limit one", limit: 1, pushes: []int{3, 1}, pops: []int{1, 1}, wantSizes: []int{minQueue, minQueue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newItemQueue(tt.limit)
			var in, out int64 // DTS of the next item pushed, popped
			for r := range tt.pushes {
				for range tt.pushes[r] {
					want := q.n < tt.limit
					if got := q.push(dtsItem(in)); got != want {
						t.Fatalf("round %d: push with %d waiting = %v, want %v", r, q.n, got, want)
					}
					if want {
						in++
					}
				}
				if q.n > tt.limit {
					t.Fatalf("round %d: %d items wait, limit %d", r, q.n, tt.limit)
				}
				for range tt.pops[r] {
					it, ok := q.pop()
					if !ok {
						if out != in {
							t.Fatalf("round %d: empty with %d items not popped", r, in-out)
						}
						break
					}
					if it.sample.DTS != out {
						t.Fatalf("round %d: popped DTS %d, want %d (FIFO order)", r, it.sample.DTS, out)
					}
					out++
				}
				if got := len(q.buf); got != tt.wantSizes[r] {
					t.Errorf("round %d: buffer of %d items with %d waiting, want %d", r, got, q.n, tt.wantSizes[r])
				}
				for i, it := range q.buf {
					if waiting := (i-q.head+len(q.buf))%len(q.buf) < q.n; !waiting && it.sample.Payload != nil {
						t.Fatalf("round %d: slot %d keeps a payload it no longer holds", r, i)
					}
				}
			}
		})
	}
}

// TestItemQueueWakesTheWriter: a consumer that waits on ready, as
// writeLoop does, gets every item a concurrent producer pushed, in order.
func TestItemQueueWakesTheWriter(t *testing.T) {
	q := newItemQueue(512)
	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; {
			if q.push(dtsItem(i)) {
				i++
			}
		}
	}()
	deadline := time.After(20 * time.Second)
	for want := int64(0); want < n; {
		it, ok := q.pop()
		if ok {
			if it.sample.DTS != want {
				t.Fatalf("popped DTS %d, want %d", it.sample.DTS, want)
			}
			want++
			continue
		}
		select {
		case <-q.ready:
		case <-deadline:
			t.Fatalf("consumer not woken: %d of %d items", want, n)
		}
	}
	wg.Wait()
}
