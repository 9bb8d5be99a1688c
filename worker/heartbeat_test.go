package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
)

// fullStatus returns a recorder.Status with every field set, field i to
// a value of its own (so that two fields swapped on the wire differ).
func fullStatus(t testing.TB) recorder.Status {
	var s recorder.Status
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		setField(t, v.Field(i), i)
	}
	return s
}

func setField(t testing.TB, f reflect.Value, i int) {
	switch {
	case f.Type() == reflect.TypeFor[time.Time]():
		f.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(i), 123_456_789+int64(i))))
	case f.Kind() == reflect.String:
		f.SetString(fmt.Sprintf("value %d", i))
	case f.Kind() == reflect.Int64: // int64 and time.Duration
		f.SetInt(int64(i+1) * 1_000_003)
	case f.Kind() == reflect.Uint64:
		f.SetUint(uint64(i+1) * 7)
	case f.Kind() == reflect.Float64:
		f.SetFloat(float64(i) + 0.5)
	default:
		t.Fatalf("recorder.Status field %d has kind %s: teach setField and wireStatus about it", i, f.Type())
	}
}

// sameStatus compares two statuses, their instants with Equal.
func sameStatus(a, b recorder.Status) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if ta, ok := fa.(time.Time); ok {
			if !ta.Equal(fb.(time.Time)) {
				return false
			}
			continue
		}
		if fa != fb {
			return false
		}
	}
	return true
}

// overTheWire encodes sts as the worker answers the heartbeat and decodes
// them as the supervisor does.
func overTheWire(t *testing.T, sts []recorder.Status) []recorder.Status {
	b, err := json.Marshal(heartbeatAnswer(sts))
	if err != nil {
		t.Fatal(err)
	}
	var ws []wireStatus
	if err := json.Unmarshal(b, &ws); err != nil {
		t.Fatal(err)
	}
	return readHeartbeat(nil, ws)
}

func TestWireStatusCarriesEveryField(t *testing.T) {
	full := fullStatus(t)
	typ := reflect.TypeFor[recorder.Status]()
	cases := []struct {
		name string
		s    recorder.Status
	}{
		{"every field set", full},
		{"zero", recorder.Status{}},
		{"recording, nothing failed", recorder.Status{ID: "rec-a/cam1", Home: "rec-a", State: recorder.StateRecording,
			Since: time.Unix(1_700_000_000, 1), Started: time.Unix(1_699_999_990, 0), FramesReceived: 1, Codec: "H264+AAC"}},
	}
	// each field alone: a field dropped, or two fields sharing a key,
	// comes back zero or in the other's place
	for i := range typ.NumField() {
		var s recorder.Status
		v := reflect.ValueOf(&s).Elem()
		v.Field(i).Set(reflect.ValueOf(full).Field(i))
		cases = append(cases, struct {
			name string
			s    recorder.Status
		}{"only " + typ.Field(i).Name, s})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := overTheWire(t, []recorder.Status{c.s})
			if len(got) != 1 || !sameStatus(got[0], c.s) {
				t.Errorf("over the heartbeat\n%+v\nbecame\n%+v", c.s, got)
			}
		})
	}
}

// TestStatusFromEitherRelease asks a worker's status as the supervisor
// does, of a worker that serves the heartbeat route and of one of an
// older release that serves only GET /status.
func TestStatusFromEitherRelease(t *testing.T) {
	want := []recorder.Status{fullStatus(t), {ID: "rec-a/cam2", State: recorder.StateConnecting}}
	cases := []struct {
		name      string
		heartbeat bool
	}{
		{"this release", true},
		{"an older release", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			var mu sync.Mutex // the handlers run on the server's goroutines
			asked := map[string]int{}
			count := func(route string) { mu.Lock(); asked[route]++; mu.Unlock() }
			mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) {
				count("/status")
				writeJSON(rw, want)
			})
			if c.heartbeat {
				mux.HandleFunc("GET "+heartbeatRoute, func(rw http.ResponseWriter, r *http.Request) {
					count(heartbeatRoute)
					writeJSON(rw, heartbeatAnswer(want))
				})
			}
			p := fakeWorker(t, mux)
			for i := range 2 {
				askStatus(t, p, nil, want, fmt.Sprintf("ask %d", i))
			}
			// the older release is asked the heartbeat route once only
			wantAsked := map[string]int{heartbeatRoute: 2}
			if !c.heartbeat {
				wantAsked = map[string]int{"/status": 2}
			}
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(asked, wantAsked) {
				t.Errorf("routes served %v, want %v", asked, wantAsked)
			}
		})
	}
}

// fakeWorker serves mux on a worker's Unix socket until the test ends and
// returns the supervisor's handle on it.
func fakeWorker(t testing.TB, mux *http.ServeMux) *proc {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "w1.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln) //nolint:errcheck // closed below
	t.Cleanup(func() { srv.Close() })
	p := newProc(1, socket)
	t.Cleanup(p.close)
	return p
}

// TestHeartbeatsCarryNothingOver: the supervisor decodes each heartbeat
// into what it kept from the one before (proc.hb, and the statuses the
// caller hands back), so a camera gone, a field the worker now leaves out
// (an error cleared, dropped frames back to zero) or a shorter answer must
// still read exactly as the worker sent it.
func TestHeartbeatsCarryNothingOver(t *testing.T) {
	full := fullStatus(t)
	full.ID = "rec-a/cam1"
	second := fullStatus(t)
	second.ID = "rec-a/cam2"
	answers := [][]recorder.Status{
		{full, second},
		{{ID: "rec-a/cam2", State: recorder.StateConnecting}},
		{{ID: "rec-a/cam1", State: recorder.StateRecording, FramesReceived: 7}, {ID: "rec-a/cam3"}},
		{},
		{full},
	}
	var mu sync.Mutex
	next := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+heartbeatRoute, func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := answers[next%len(answers)]
		next++
		mu.Unlock()
		writeJSON(rw, heartbeatAnswer(a))
	})
	p := fakeWorker(t, mux)
	var st []recorder.Status
	for round := range 2 {
		for i, want := range answers {
			st = askStatus(t, p, st, want, fmt.Sprintf("round %d, heartbeat %d", round, i))
		}
	}
}

// askStatus asks p's status as the supervisor's watch does, handing back
// buf, and checks it is want.
func askStatus(t *testing.T, p *proc, buf, want []recorder.Status, where string) []recorder.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := p.status(ctx, buf)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d statuses, want %d", where, len(got), len(want))
	}
	for j := range want {
		if !sameStatus(got[j], want[j]) {
			t.Errorf("%s, status %d:\n got %+v\nwant %+v", where, j, got[j], want[j])
		}
	}
	return got
}

// BenchmarkHeartbeatRead is one heartbeat of a worker of 25 recording
// cameras as the supervisor's watch reads it, over the worker's Unix
// socket, handing back the statuses of the one before: the allocations
// per heartbeat are what the supervisor's collector pays for 2 × workers
// times a second.
//
//	go test ./worker -run '^$' -bench HeartbeatRead -benchmem
func BenchmarkHeartbeatRead(b *testing.B) {
	sts := benchStatuses()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+heartbeatRoute, func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, heartbeatAnswer(sts))
	})
	p := fakeWorker(b, mux)
	ctx := context.Background()
	var st []recorder.Status
	b.ReportAllocs()
	for b.Loop() {
		got, err := p.status(ctx, st)
		if err != nil || len(got) != len(sts) {
			b.Fatal(len(got), err)
		}
		st = got
	}
}

// benchStatuses are 25 recording cameras (the default cameras_per_worker).
func benchStatuses() []recorder.Status {
	now := time.Now()
	sts := make([]recorder.Status, 25)
	for i := range sts {
		sts[i] = recorder.Status{ID: fmt.Sprintf("rec-a/cam%d", i+1), Home: "rec-a", State: recorder.StateRecording,
			Since: now.Add(-time.Hour), Started: now.Add(-time.Hour), FramesReceived: 90_000 + uint64(i), BytesReceived: 900_000_000,
			LastKeyframe: now.Add(-time.Second), Bitrate: 2_048_576.25, Codec: "H264+AAC"}
	}
	return sts
}

// BenchmarkHeartbeatDecode decodes one heartbeat of a worker of 25
// recording cameras (the default cameras_per_worker), in each form: what
// the supervisor pays per worker every 500 ms.
//
//	go test ./worker -run '^$' -bench HeartbeatDecode -benchmem
func BenchmarkHeartbeatDecode(b *testing.B) {
	sts := benchStatuses()
	legacy, err := json.Marshal(sts)
	if err != nil {
		b.Fatal(err)
	}
	wire, err := json.Marshal(heartbeatAnswer(sts))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("recorder.Status", func(b *testing.B) {
		b.SetBytes(int64(len(legacy)))
		for b.Loop() {
			var out []recorder.Status
			if err := json.Unmarshal(legacy, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wireStatus", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			var ws []wireStatus
			if err := json.Unmarshal(wire, &ws); err != nil {
				b.Fatal(err)
			}
			readHeartbeat(nil, ws)
		}
	})
}
