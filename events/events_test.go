package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTest(t *testing.T, o Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	l, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func TestAppendAssignsIDAndTimeAndSurvivesReopen(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, path := openTest(t, Options{Now: clk.Now})
	a, err := l.Append(Event{Type: TypeServerDown, Severity: SeverityAlarm, Server: "rec-a", Text: "rec-a silent for 3s"})
	if err != nil {
		t.Fatal(err)
	}
	// Same nanosecond: IDs must still be unique and ordered.
	b, err := l.Append(Event{Type: TypeFailoverStarted, Server: "rec-b", Cameras: []string{"rec-a/lobby"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || b.ID == "" || a.ID >= b.ID {
		t.Fatalf("ids not unique/ordered: %q %q", a.ID, b.ID)
	}
	if !a.Time.Equal(t0) || b.Severity != SeverityInfo {
		t.Fatalf("defaults not applied: %+v %+v", a, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	c, err := l2.Append(Event{Type: TypeServerUp, Server: "rec-a"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID <= b.ID {
		t.Fatalf("id after reopen %q not after %q", c.ID, b.ID)
	}
	got, _, err := l2.List(time.Time{}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != c.ID || got[2].ID != a.ID || got[1].Cameras[0] != "rec-a/lobby" {
		t.Fatalf("list after reopen: %+v", got)
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	l, _ := openTest(t, Options{})
	for _, e := range []Event{
		{},
		{Type: "disk.low", Severity: "critical"},
		{Type: "disk.low", Time: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := l.Append(e); err == nil {
			t.Errorf("Append(%+v) accepted", e)
		}
	}
}

func TestListPaging(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, _ := openTest(t, Options{Now: clk.Now})
	var ids []string
	for i := range 25 {
		e, err := l.Append(Event{Type: TypeCameraOffline, Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		clk.Add(time.Minute)
	}
	tests := []struct {
		name  string
		since time.Time
		limit int
		want  []int // indexes of ids, newest first, across all pages
	}{
		{"all in pages of 10", time.Time{}, 10, seq(24, 0)},
		{"one page", time.Time{}, 100, seq(24, 0)},
		{"page size 1", time.Time{}, 1, seq(24, 0)},
		{"since inclusive", t0.Add(20 * time.Minute), 2, seq(24, 20)},
		{"since in future", t0.Add(time.Hour), 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			before, pages := "", 0
			for {
				evs, next, err := l.List(tt.since, before, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) > tt.limit {
					t.Fatalf("page of %d > limit %d", len(evs), tt.limit)
				}
				for _, e := range evs {
					got = append(got, e.ID)
				}
				pages++
				if next == "" {
					break
				}
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				before = next
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("got %d events %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
	if _, _, err := l.List(time.Time{}, "zz", 10); err == nil {
		t.Error("malformed cursor accepted")
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i >= to; i-- {
		s = append(s, i)
	}
	return s
}

func TestAck(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, _ := openTest(t, Options{Now: clk.Now})
	e, err := l.Append(Event{Type: TypeDiskFull, Severity: SeverityAlarm})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if err := l.Ack(e.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if err := l.Ack(e.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	got, err := l.Get(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Acked || got.AckedBy != "alice" || !got.AckedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ack not recorded as first ack: %+v", got)
	}
	for _, id := range []string{"", "nothex", strings.Repeat("0", 24)} {
		if err := l.Ack(id, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Ack(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestPruneAndRun(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, _ := openTest(t, Options{Now: clk.Now, Retention: 48 * time.Hour, PruneInterval: 10 * time.Millisecond})
	for i := range 5 {
		if _, err := l.Append(Event{Type: TypeCameraOnline, Time: t0.Add(time.Duration(i) * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// Events at day 0..4; now = day 4 + 1h: cutoff day 2 + 1h keeps days 3, 4.
	n, err := l.Prune(t0.Add(4*24*time.Hour + time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("pruned %d, want 3", n)
	}
	evs, _, _ := l.List(time.Time{}, "", 10)
	if len(evs) != 2 || !evs[1].Time.Equal(t0.Add(3*24*time.Hour)) {
		t.Fatalf("left after prune: %+v", evs)
	}

	// Run prunes on its own once the clock moves past retention.
	clk.Add(10 * 24 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for {
		evs, _, _ := l.List(time.Time{}, "", 10)
		if len(evs) == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("Run did not prune")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestScrub(t *testing.T) {
	tests := []struct{ in, want string }{
		{"camera rtsp://admin:hunter2@10.0.1.21/stream1 offline", "camera rtsp://admin:xxxxx@10.0.1.21/stream1 offline"},
		{"http://u:p@ss@host/x and https://a:b@c", "http://u:xxxxx@host/x and https://a:xxxxx@c"},
		{"mail ops@example.com, no url", "mail ops@example.com, no url"},
		{"rtsp://10.0.1.21/stream1", "rtsp://10.0.1.21/stream1"},
	}
	for _, tt := range tests {
		if got := Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	l, _ := openTest(t, Options{})
	e, err := l.Append(Event{Type: TypeCameraAuthFailed, Text: "auth failed for rtsp://admin:hunter2@10.0.1.21/s"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := l.Get(e.ID)
	if strings.Contains(got.Text, "hunter2") {
		t.Fatalf("password stored: %q", got.Text)
	}
}

func TestSubscribe(t *testing.T) {
	l, _ := openTest(t, Options{})
	ch, cancel := l.Subscribe(4)
	e, err := l.Append(Event{Type: TypeDiskLow, Severity: SeverityWarning})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-ch; got.ID != e.ID {
		t.Fatalf("got %+v want %+v", got, e)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	cancel() // idempotent
}

func TestHandler(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, _ := openTest(t, Options{Now: clk.Now})
	var ids []string
	for i := range 3 {
		e, err := l.Append(Event{Type: TypeServerDown, Severity: SeverityAlarm, Text: fmt.Sprint("event ", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		clk.Add(time.Second)
	}
	srv := httptest.NewServer(l.Handler(HandlerOptions{}))
	t.Cleanup(srv.Close)

	type page struct {
		Events []map[string]any `json:"events"`
		Next   string           `json:"next"`
		Error  string           `json:"error"`
	}
	get := func(t *testing.T, method, path, body string) (int, page) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s content-type %q", method, path, ct)
		}
		var p page
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
		return resp.StatusCode, p
	}

	code, p := get(t, "GET", "/api/v1/events?limit=2", "")
	if code != 200 || len(p.Events) != 2 || p.Events[0]["id"] != ids[2] || p.Next != ids[1] {
		t.Fatalf("first page: %d %+v", code, p)
	}
	if p.Events[0]["type"] != "server.down" || p.Events[0]["severity"] != "alarm" || p.Events[0]["acked"] != false {
		t.Fatalf("event fields: %+v", p.Events[0])
	}
	if _, ok := p.Events[0]["acked_at"]; ok {
		t.Fatalf("acked_at present on unacked event: %+v", p.Events[0])
	}
	code, p = get(t, "GET", "/api/v1/events?limit=2&before="+p.Next, "")
	if code != 200 || len(p.Events) != 1 || p.Events[0]["id"] != ids[0] || p.Next != "" {
		t.Fatalf("second page: %d %+v", code, p)
	}
	code, p = get(t, "GET", "/api/v1/events?since="+t0.Add(time.Second).Format(time.RFC3339), "")
	if code != 200 || len(p.Events) != 2 {
		t.Fatalf("since: %d %+v", code, p)
	}

	bad := []struct{ query, param string }{
		{"since=yesterday", "since"},
		{"limit=0", "limit"},
		{"limit=ten", "limit"},
		{"before=xyz", "before"},
	}
	for _, b := range bad {
		code, p := get(t, "GET", "/api/v1/events?"+b.query, "")
		if code != 400 || !strings.HasPrefix(p.Error, b.param) {
			t.Errorf("?%s: %d %q, want 400 naming %s", b.query, code, p.Error, b.param)
		}
	}

	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/events/"+ids[1]+"/ack", strings.NewReader(`{"by":"operator-1"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acked Event
	json.NewDecoder(resp.Body).Decode(&acked)
	resp.Body.Close()
	if resp.StatusCode != 200 || !acked.Acked || acked.AckedBy != "operator-1" || acked.ID != ids[1] {
		t.Fatalf("ack: %d %+v", resp.StatusCode, acked)
	}
	if e, _ := l.Get(ids[1]); !e.Acked {
		t.Fatal("ack not stored")
	}
	if code, p := get(t, "POST", "/api/v1/events/"+strings.Repeat("0", 24)+"/ack", ""); code != 404 || p.Error == "" {
		t.Errorf("ack unknown: %d %+v", code, p)
	}
	if code, p := get(t, "POST", "/api/v1/events/"+ids[0]+"/ack", "{not json"); code != 400 || !strings.HasPrefix(p.Error, "body") {
		t.Errorf("ack bad body: %d %+v", code, p)
	}
}

func TestOpenLockedTimesOut(t *testing.T) {
	_, path := openTest(t, Options{})
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open = %v, want timeout error naming the file", err)
	}
}

// TestAlarmResolvedByLaterEvent: an event listing an alarm's condition in
// Resolves marks every unresolved alarm of that condition resolved, across
// a reopen; the alarm stays in the log and can still be acknowledged;
// other conditions and later alarms of the same condition stay open.
func TestAlarmResolvedByLaterEvent(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, path := openTest(t, Options{Now: clk.Now})
	off1, err := l.Append(Event{Type: TypeCameraOffline, Severity: SeverityAlarm, Cameras: []string{"rec-a/x"}, Condition: "camera/rec-a/x"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	off2, _ := l.Append(Event{Type: TypeCameraOffline, Severity: SeverityAlarm, Cameras: []string{"rec-a/x"}, Condition: "camera/rec-a/x"})
	other, _ := l.Append(Event{Type: TypeCameraOffline, Severity: SeverityAlarm, Cameras: []string{"rec-a/y"}, Condition: "camera/rec-a/y"})
	info, _ := l.Append(Event{Type: TypeServerUp, Severity: SeverityInfo, Condition: "ignored/on/info"})
	if info.Condition != "" {
		t.Errorf("an info event kept a condition: %+v", info)
	}
	l.Close()
	l, err = Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	clk.Add(time.Second)
	on, err := l.Append(Event{Type: TypeCameraOnline, Severity: SeverityInfo, Cameras: []string{"rec-a/x"}, Resolves: []string{"camera/rec-a/x"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{off1.ID, off2.ID} {
		e, err := l.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if e.ResolvedBy != on.ID || !e.ResolvedAt.Equal(on.Time) || e.Acked {
			t.Errorf("alarm %s after camera.online: %+v, want resolved by %s and not acknowledged", id, e, on.ID)
		}
	}
	if e, _ := l.Get(other.ID); !e.ResolvedAt.IsZero() {
		t.Errorf("alarm of another condition resolved: %+v", e)
	}
	if err := l.Ack(off1.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.Get(off1.ID); !e.Acked || e.ResolvedBy != on.ID {
		t.Errorf("resolved alarm after ack: %+v, want acknowledged and still resolved", e)
	}
	// A new alarm of the same condition is open until resolved again.
	off3, _ := l.Append(Event{Type: TypeCameraOffline, Severity: SeverityAlarm, Condition: "camera/rec-a/x"})
	if e, _ := l.Get(off3.ID); !e.ResolvedAt.IsZero() {
		t.Errorf("new alarm born resolved: %+v", e)
	}
	res, _ := l.Append(Event{Type: TypeAlarmResolved, Resolves: []string{"camera/rec-a/x", "unknown"}})
	if e, _ := l.Get(off3.ID); e.ResolvedBy != res.ID {
		t.Errorf("generic alarm.resolved did not resolve: %+v", e)
	}
}

// TestPruneForgetsOpenAlarms: a pruned alarm is no longer open, so its
// condition's list does not grow for ever and resolving finds nothing.
func TestPruneForgetsOpenAlarms(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, _ := openTest(t, Options{Now: clk.Now, Retention: time.Hour})
	l.Append(Event{Type: TypeDiskLow, Severity: SeverityAlarm, Condition: "disk.low"})
	clk.Add(2 * time.Hour)
	fresh, _ := l.Append(Event{Type: TypeDiskLow, Severity: SeverityAlarm, Condition: "disk.low"})
	if n, err := l.Prune(clk.Now()); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	var keys [][]byte
	l.db.View(func(tx *bolt.Tx) error { return json.Unmarshal(tx.Bucket(bucketOpen).Get([]byte("disk.low")), &keys) })
	if len(keys) != 1 {
		t.Fatalf("open alarms of disk.low after prune: %d, want the fresh one", len(keys))
	}
	res, _ := l.Append(Event{Type: TypeAlarmResolved, Resolves: []string{"disk.low"}})
	if e, _ := l.Get(fresh.ID); e.ResolvedBy != res.ID {
		t.Errorf("fresh alarm not resolved: %+v", e)
	}
}

// OpenConditions lists what unresolved alarms hold under a prefix, and
// forgets a condition once it is resolved.
func TestOpenConditions(t *testing.T) {
	clk := &fakeClock{t: t0}
	l, _ := openTest(t, Options{Now: clk.Now})
	for _, cond := range []string{"worker.isolated/a,b", "worker.isolated/c,d", "camera/rec-a/x"} {
		if _, err := l.Append(Event{Type: TypeWorkerIsolated, Severity: SeverityAlarm, Condition: cond}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.OpenConditions("worker.isolated/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"worker.isolated/a,b", "worker.isolated/c,d"}; !slices.Equal(got, want) {
		t.Fatalf("open: %q, want %q", got, want)
	}
	if _, err := l.Append(Event{Type: TypeAlarmResolved, Severity: SeverityInfo, Resolves: []string{"worker.isolated/a,b"}}); err != nil {
		t.Fatal(err)
	}
	got, _ = l.OpenConditions("worker.isolated/")
	if want := []string{"worker.isolated/c,d"}; !slices.Equal(got, want) {
		t.Fatalf("open after resolving a,b: %q, want %q", got, want)
	}
}
