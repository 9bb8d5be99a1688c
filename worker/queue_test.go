package worker

import (
	"encoding/json"
	"fmt"
	"testing"
)

func raw(i int) json.RawMessage { return json.RawMessage(fmt.Sprint(i)) }

func values(b Batch) []string {
	var out []string
	for _, u := range b.Updates {
		out = append(out, string(u))
	}
	return out
}

// The supervisor asks for what follows the last update it applied; asking
// acknowledges (frees) what it applied, a restarted supervisor asking from
// 0 gets everything not acknowledged, and overflow is reported as lost.
func TestQueue(t *testing.T) {
	q := &Queue{Max: 4}
	b, wait := q.Since(0, 10)
	if len(b.Updates) != 0 || b.Next != 0 || wait == nil {
		t.Fatalf("empty queue: %+v, wait %v", b, wait)
	}
	q.Push(raw(1), raw(2), raw(3))
	select {
	case <-wait:
	default:
		t.Fatal("a push does not wake the waiting request")
	}
	steps := []struct {
		after, limit int
		want         string
		next         uint64
		lost         bool
		left         int
	}{
		{0, 2, "[1 2]", 2, false, 3},
		{2, 10, "[3]", 3, false, 1}, // 1 and 2 acknowledged
		{0, 10, "[3]", 3, false, 1}, // a new supervisor: what is not acknowledged
		{3, 10, "[]", 3, false, 0},  // all acknowledged
	}
	for i, s := range steps {
		b, _ := q.Since(uint64(s.after), s.limit)
		if got := fmt.Sprint(values(b)); got != s.want || b.Next != s.next || b.Lost != s.lost || q.Len() != s.left {
			t.Errorf("step %d: Since(%d) = %s next %d lost %v, %d left; want %s next %d lost %v, %d left",
				i, s.after, got, b.Next, b.Lost, q.Len(), s.want, s.next, s.lost, s.left)
		}
	}
	// nobody listens: 6 updates into a queue of 4 lose the oldest 2
	for i := 4; i <= 9; i++ {
		q.Push(raw(i))
	}
	b, _ = q.Since(3, 10)
	if got := fmt.Sprint(values(b)); got != "[6 7 8 9]" || !b.Lost || b.Next != 9 {
		t.Errorf("after overflow: %s next %d lost %v, want [6 7 8 9] next 9 lost", got, b.Next, b.Lost)
	}
	if b, _ := q.Since(9, 10); b.Lost || len(b.Updates) != 0 || b.Next != 9 {
		t.Errorf("lost is reported once: %+v", b)
	}
}
