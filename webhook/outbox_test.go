package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

const testSecret = "whsec_dGVzdC1zaWduaW5nLWtleS0xMjM0NTY3ODkw" // "test-signing-key-1234567890"

// delivery is one request seen by a receiver.
type delivery struct {
	ID     string
	Header http.Header
	Body   []byte
	Notice Notice
	Err    error // from Verify
	Status int   // what the receiver answered
}

// receiver is a loopback PSIM that verifies every request and answers with
// the status set in code (200 by default).
type receiver struct {
	srv    *httptest.Server
	secret string
	code   atomic.Int32
	block  chan struct{} // when non-nil, requests wait on it (slow target)
	enter  chan string   // when non-nil, gets the id of each request as it starts

	mu       sync.Mutex
	attempts []delivery
	accepted []delivery
	got      chan delivery // accepted deliveries
	raw      bytes.Buffer  // raw request bytes from the wire
}

func newReceiver(t *testing.T, secret string, opts ...func(*receiver)) *receiver {
	t.Helper()
	r := &receiver{secret: secret, got: make(chan delivery, 1000)}
	r.code.Store(200)
	for _, o := range opts {
		o(r)
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Listener = &teeListener{Listener: r.srv.Listener, r: r}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	if r.block != nil {
		// Runs before srv.Close (cleanups are LIFO), so handlers end.
		t.Cleanup(func() { r.unblock() })
	}
	return r
}

var unblockMu sync.Mutex

func (r *receiver) unblock() {
	unblockMu.Lock()
	defer unblockMu.Unlock()
	select {
	case <-r.block:
	default:
		close(r.block)
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := delivery{ID: req.Header.Get(HeaderID), Header: req.Header.Clone(), Body: body}
	if r.enter != nil {
		r.enter <- d.ID
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-req.Context().Done():
			return
		}
	}
	d.Err = Verify(r.secret, req.Header, body, time.Minute)
	if err := json.Unmarshal(body, &d.Notice); err != nil && d.Err == nil {
		d.Err = err
	}
	d.Status = int(r.code.Load())
	r.mu.Lock()
	r.attempts = append(r.attempts, d)
	if d.Status/100 == 2 {
		r.accepted = append(r.accepted, d)
	}
	r.mu.Unlock()
	if d.Status/100 == 2 {
		r.got <- d
	}
	w.WriteHeader(d.Status)
}

func (r *receiver) Attempts() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.attempts...)
}

func (r *receiver) Raw() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.raw.String()
}

// next waits for the next accepted delivery.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		if d.Err != nil {
			t.Fatalf("delivery %s failed verification: %v", d.ID, d.Err)
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return delivery{}
	}
}

// teeListener records the raw bytes the receiver reads, to check the exact
// header names on the wire.
type teeListener struct {
	net.Listener
	r *receiver
}

func (l *teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &teeConn{Conn: c, r: l.r}, nil
}

type teeConn struct {
	net.Conn
	r *receiver
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.raw.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

// fast returns options with millisecond backoffs.
func fast(o Options) Options {
	o.MinBackoff = time.Millisecond
	o.MaxBackoff = 5 * time.Millisecond
	return o
}

// run starts ob.Run and stops it at cleanup.
func run(t *testing.T, ob *Outbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func openOutbox(t *testing.T, path string, o Options) *Outbox {
	t.Helper()
	ob, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

func notice(i int) Notice {
	return Notice{
		Type:         "failover.completed",
		Server:       "rec-b",
		FailedServer: "rec-a",
		Address:      &Address{IP: "127.0.0.2", HTTP: "127.0.0.2:8080", RTSP: "127.0.0.2:8554"},
		Cameras:      []Camera{{ID: "rec-a/lobby", LiveURL: "rtsp://127.0.0.2:8554/rec-a/lobby"}},
		Aspects:      []Aspect{{Kind: "io", Name: "door-io-1"}},
		Text:         fmt.Sprintf("notice %d", i),
	}
}

func seqOf(t *testing.T, d delivery) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(d.Notice.Text, "notice "))
	if err != nil {
		t.Fatalf("unexpected notice text %q", d.Notice.Text)
	}
	return n
}

func TestOutboxDeliversSignedInOrder(t *testing.T) {
	r := newReceiver(t, testSecret)
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets: []Target{{Name: "psim", URL: r.srv.URL + "/hooks", Secret: testSecret}},
	}))
	run(t, ob)
	const n = 30
	for i := range n {
		if err := ob.Enqueue(notice(i)); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]bool{}
	for i := range n {
		d := r.next(t)
		if got := seqOf(t, d); got != i {
			t.Fatalf("delivery %d carries notice %d", i, got)
		}
		if d.Notice.ID != d.ID || ids[d.ID] {
			t.Fatalf("webhook-id %q vs body id %q (dup=%v)", d.ID, d.Notice.ID, ids[d.ID])
		}
		ids[d.ID] = true
		if ct := d.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content-type %q", ct)
		}
	}
	d := r.accepted[0]
	want := notice(0)
	want.ID, want.Time = d.Notice.ID, d.Notice.Time
	if !jsonEqual(t, d.Notice, want) || d.Notice.Time.IsZero() {
		t.Fatalf("body %s\nwant %+v", d.Body, want)
	}
	var fields map[string]any
	json.Unmarshal(d.Body, &fields)
	for _, k := range []string{"type", "id", "time", "server", "failed_server", "address", "cameras", "aspects", "text"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("body lacks %q: %s", k, d.Body)
		}
	}
	raw := r.Raw()
	for _, h := range []string{"\r\nwebhook-id: msg_", "\r\nwebhook-timestamp: ", "\r\nwebhook-signature: v1,"} {
		if !strings.Contains(raw, h) {
			t.Errorf("wire lacks %q", h)
		}
	}
	testutil.Eventually(t, 10*time.Second, "pending 0", func() bool { return ob.Stats()[0].Pending == 0 })
	if st := ob.Stats()[0]; st.Delivered != n || st.Failures != 0 || st.Disabled {
		t.Fatalf("stats %+v", st)
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestOutboxSurvivesCloseAndRetriesWithSameID(t *testing.T) {
	r := newReceiver(t, testSecret)
	r.code.Store(http.StatusServiceUnavailable)
	path := filepath.Join(t.TempDir(), "outbox.db")
	opts := fast(Options{Targets: []Target{{Name: "psim", URL: r.srv.URL, Secret: testSecret}}})
	ob, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, ob)
	const n = 5
	for i := range n {
		if err := ob.Enqueue(notice(i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "3 failed attempts", func() bool { return len(r.Attempts()) >= 3 && ob.Stats()[0].Failures >= 3 })
	stop()
	st := ob.Stats()[0]
	if st.Pending != n || st.Failures < 3 || !strings.Contains(st.LastError, "503") {
		t.Fatalf("stats while receiver down: %+v", st)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	attempts := r.Attempts()
	firstID := attempts[0].ID
	for _, a := range attempts {
		// Head of line: only notice 0 was tried, always with the same id,
		// each attempt correctly signed.
		if a.ID != firstID || seqOf(t, a) != 0 || a.Err != nil {
			t.Fatalf("attempt %+v; want retries of notice 0 with id %s", a, firstID)
		}
	}

	r.code.Store(200)
	ob2 := openOutbox(t, path, opts)
	run(t, ob2)
	for i := 0; i < n; {
		d := r.next(t)
		if i > 0 && d.ID == firstID {
			// The first outbox's last attempt, cancelled by stop, may
			// still reach the handler after the receiver came back and
			// be accepted: at least once, with the same id, which a PSIM
			// deduplicates on.
			continue
		}
		if seqOf(t, d) != i {
			t.Fatalf("after reopen delivery %d is notice %d", i, seqOf(t, d))
		}
		if i == 0 && d.ID != firstID {
			t.Fatalf("retry after reopen has id %s, want %s", d.ID, firstID)
		}
		i++
	}
}

func TestOutbox410DisablesTargetOthersContinue(t *testing.T) {
	gone := newReceiver(t, testSecret)
	gone.code.Store(http.StatusGone)
	ok := newReceiver(t, testSecret)
	type alarm struct {
		kind         events.Type
		target, text string
	}
	alarms := make(chan alarm, 10)
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets: []Target{
			{Name: "gone", URL: gone.srv.URL, Secret: testSecret},
			{Name: "ok", URL: ok.srv.URL, Secret: testSecret},
		},
		OnAlarm: func(kind events.Type, target, text string) { alarms <- alarm{kind, target, text} },
	}))
	run(t, ob)
	for i := range 3 {
		if err := ob.Enqueue(notice(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case a := <-alarms:
		if a.kind != events.TypeWebhookDisabled || a.target != "gone" || !strings.Contains(a.text, "410") {
			t.Fatalf("alarm %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alarm")
	}
	for i := range 3 {
		if seqOf(t, ok.next(t)) != i {
			t.Fatal("order broken on healthy target")
		}
	}
	if err := ob.Enqueue(notice(3)); err != nil {
		t.Fatal(err)
	}
	if seqOf(t, ok.next(t)) != 3 {
		t.Fatal("healthy target missed notice after the other was disabled")
	}
	if n := len(gone.Attempts()); n != 1 {
		t.Fatalf("disabled target got %d attempts, want 1", n)
	}
	st := ob.Stats()
	if !st[0].Disabled || st[0].Pending != 4 || st[1].Disabled {
		t.Fatalf("stats %+v (disabled target keeps its notices)", st)
	}
}

func TestOutboxSlowTargetBlocksNobody(t *testing.T) {
	slow := newReceiver(t, testSecret, func(r *receiver) {
		r.block = make(chan struct{})
		r.enter = make(chan string, 100)
	})
	quick := newReceiver(t, testSecret)
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets: []Target{
			{Name: "slow", URL: slow.srv.URL, Secret: testSecret},
			{Name: "quick", URL: quick.srv.URL, Secret: testSecret},
		},
	}))
	run(t, ob)
	if err := ob.Enqueue(notice(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-slow.enter: // the slow target is now stuck inside notice 0
	case <-time.After(10 * time.Second):
		t.Fatal("slow target never called")
	}
	// Enqueue must not wait for the stuck target.
	enqueued := make(chan error, 1)
	go func() {
		for i := 1; i < 20; i++ {
			if err := ob.Enqueue(notice(i)); err != nil {
				enqueued <- err
				return
			}
		}
		enqueued <- nil
	}()
	select {
	case err := <-enqueued:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Enqueue blocked behind a slow target")
	}
	// The quick target receives everything while the slow one is stuck.
	for i := range 20 {
		if seqOf(t, quick.next(t)) != i {
			t.Fatal("quick target out of order")
		}
	}
	if st := ob.Stats()[0]; st.Delivered != 0 || st.Pending != 20 {
		t.Fatalf("slow target stats %+v while stuck", st)
	}
	slow.unblock()
	for i := range 20 {
		if seqOf(t, slow.next(t)) != i {
			t.Fatal("slow target out of order")
		}
	}
}

func TestOutboxGivesUpAfterGiveUpAfter(t *testing.T) {
	r := newReceiver(t, testSecret)
	r.code.Store(http.StatusInternalServerError)
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	alarms := make(chan string, 10)
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets:     []Target{{Name: "psim", URL: r.srv.URL, Secret: testSecret}},
		GiveUpAfter: 24 * time.Hour,
		Now:         func() time.Time { return time.Unix(0, clock.Load()) },
		OnAlarm: func(kind events.Type, target, text string) {
			if kind == AlarmGaveUp && target == "psim" {
				alarms <- text
			}
		},
	}))
	run(t, ob)
	ob.Enqueue(notice(0))
	ob.Enqueue(notice(1))
	testutil.Eventually(t, 10*time.Second, "failed attempts", func() bool { return len(r.Attempts()) >= 2 })
	if len(alarms) != 0 {
		t.Fatal("gave up before GiveUpAfter")
	}
	clock.Add(int64(25 * time.Hour))
	for range 2 {
		select {
		case text := <-alarms:
			if !strings.Contains(text, "failover.completed") {
				t.Fatalf("alarm text %q", text)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no give-up alarm")
		}
	}
	r.code.Store(200)
	ob.Enqueue(notice(2))
	if seqOf(t, r.next(t)) != 2 {
		t.Fatal("given-up notices were delivered")
	}
	testutil.Eventually(t, 10*time.Second, "pending 0", func() bool { return ob.Stats()[0].Pending == 0 })
	if st := ob.Stats()[0]; st.GaveUp != 2 || st.Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOutboxFilters(t *testing.T) {
	fo := newReceiver(t, testSecret)
	all := newReceiver(t, testSecret)
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets: []Target{
			{Name: "failover-only", URL: fo.srv.URL, Secret: testSecret, Events: []string{"failover.*"}},
			{Name: "all", URL: all.srv.URL, Secret: testSecret},
		},
	}))
	run(t, ob)
	for _, typ := range []string{"server.down", "failover.started", "camera.offline", "failover.completed"} {
		if err := ob.Enqueue(Notice{Type: typ, Server: "rec-b"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"failover.started", "failover.completed"} {
		if d := fo.next(t); d.Notice.Type != want {
			t.Fatalf("filtered target got %s, want %s", d.Notice.Type, want)
		}
	}
	for _, want := range []string{"server.down", "failover.started", "camera.offline", "failover.completed"} {
		if d := all.next(t); d.Notice.Type != want {
			t.Fatalf("unfiltered target got %s, want %s", d.Notice.Type, want)
		}
	}
	if err := ob.Enqueue(Notice{}); err == nil {
		t.Fatal("notice without type accepted")
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSecretsNeverLeak(t *testing.T) {
	r := newReceiver(t, testSecret)
	r.code.Store(http.StatusServiceUnavailable)
	// A closed port: connection refused, errors mention the address.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()

	const badSecret = "plaintext-not-whsec-SECRETVALUE"
	key, _ := ParseSecret(testSecret)
	secrets := []string{"urlpassword", "querytoken", "campassword", badSecret, testSecret,
		strings.TrimPrefix(testSecret, SecretPrefix), string(key), base64.RawStdEncoding.EncodeToString(key)}

	var logs syncBuffer
	var alarmMu sync.Mutex
	var alarmText strings.Builder
	u := strings.Replace(r.srv.URL, "http://", "http://psimuser:urlpassword@", 1) + "/hook?token=querytoken"
	ob := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), fast(Options{
		Targets: []Target{
			{Name: "psim", URL: u, Secret: testSecret},
			{Name: "dead", URL: "http://u:urlpassword@" + dead + "/x?token=querytoken", Secret: testSecret},
			{Name: "misconfigured", URL: u, Secret: badSecret},
		},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnAlarm: func(kind events.Type, target, text string) {
			alarmMu.Lock()
			fmt.Fprintln(&alarmText, kind, target, text)
			alarmMu.Unlock()
		},
	}))
	run(t, ob)
	n := notice(0)
	n.Text = "camera rtsp://admin:campassword@10.0.1.21/stream1 adopted"
	n.Cameras[0].LiveURL = "rtsp://viewer:campassword@127.0.0.2:8554/rec-a/lobby"
	if err := ob.Enqueue(n); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "failures on both live targets", func() bool {
		st := ob.Stats()
		return st[0].Failures >= 2 && st[1].Failures >= 2
	})
	r.code.Store(200)
	d := r.next(t)
	if user, pass, ok := (&http.Request{Header: d.Header}).BasicAuth(); !ok || user != "psimuser" || pass != "urlpassword" {
		t.Fatalf("URL userinfo not sent as basic auth: %v %q", ok, user)
	}
	st := ob.Stats()
	if !st[2].Disabled || !strings.Contains(st[2].LastError, "whsec_") {
		t.Fatalf("misconfigured target stats %+v", st[2])
	}
	var statsText strings.Builder
	for _, s := range st {
		fmt.Fprintf(&statsText, "%+v\n", s)
	}
	alarmMu.Lock()
	alarms := alarmText.String()
	alarmMu.Unlock()
	for what, text := range map[string]string{"logs": logs.String(), "stats": statsText.String(), "alarms": alarms, "body": string(d.Body)} {
		if text == "" && what != "body" {
			t.Errorf("%s empty: nothing was checked", what)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contain secret %q:\n%s", what, s, text)
			}
		}
	}
	if !strings.Contains(logs.String(), dead) || !strings.Contains(string(d.Body), "admin:xxxxx@10.0.1.21") {
		t.Errorf("redaction removed too much:\nlogs %s\nbody %s", logs.String(), d.Body)
	}
}

func TestSendTest(t *testing.T) {
	ok := newReceiver(t, testSecret)
	bad := newReceiver(t, testSecret)
	bad.code.Store(http.StatusUnauthorized)
	res := SendTest(context.Background(), nil, []Target{
		{Name: "ok", URL: ok.srv.URL + "?token=querytoken", Secret: testSecret, Events: []string{"failover.*"}},
		{Name: "bad", URL: bad.srv.URL, Secret: testSecret},
		{Name: "invalid", URL: ok.srv.URL, Secret: "nope"},
	}, "rec-a")
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	d := ok.next(t)
	if !res[0].OK() || res[0].Status != 200 || res[0].ID != d.ID || res[0].Latency <= 0 ||
		d.Notice.Type != TypeTest || d.Notice.Server != "rec-a" || strings.Contains(res[0].URL, "querytoken") {
		t.Fatalf("ok result %+v, delivery %+v", res[0], d.Notice)
	}
	if res[1].OK() || res[1].Status != 401 || !strings.Contains(res[1].Err, "401") {
		t.Fatalf("bad result %+v", res[1])
	}
	if res[2].OK() || res[2].Status != 0 || strings.Contains(res[2].Err, "nope") {
		t.Fatalf("invalid result %+v", res[2])
	}
}

const helperEnv = "BUDDYREC_OUTBOX_HELPER"

// TestHelperOutbox is not a test: TestOutboxSurvivesKill9 runs the test
// binary with this test selected and helperEnv set to "path|url". It
// enqueues notices towards a dead target, printing each id once Enqueue
// returned, until it is killed.
func TestHelperOutbox(t *testing.T) {
	arg := os.Getenv(helperEnv)
	if arg == "" {
		t.Skip("helper process for TestOutboxSurvivesKill9")
	}
	path, u, _ := strings.Cut(arg, "|")
	ob, err := Open(path, fast(Options{Targets: []Target{{Name: "psim", URL: u, Secret: testSecret}}}))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	go ob.Run(context.Background())
	for i := 0; ; i++ {
		n := notice(i)
		n.ID = fmt.Sprintf("msg_%06d", i)
		if err := ob.Enqueue(n); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("enqueued", n.ID)
	}
}

func TestOutboxSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String() + "/hook"
	l.Close()
	path := filepath.Join(t.TempDir(), "outbox.db")

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOutbox$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path+"|"+deadURL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var acked []string
	sc := bufio.NewScanner(out)
	for len(acked) < 50 && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "enqueued" {
			acked = append(acked, f[1])
		} else if len(f) > 0 && f[0] == "error" {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	if len(acked) < 50 {
		t.Fatalf("helper printed only %d ids", len(acked))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Ids printed before the kill landed are acknowledged too: read them
	// all before Wait closes the pipe.
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "enqueued" {
			acked = append(acked, f[1])
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v", err)
	}

	r := newReceiver(t, testSecret)
	ob := openOutbox(t, path, fast(Options{Targets: []Target{{Name: "psim", URL: r.srv.URL, Secret: testSecret}}}))
	pending := ob.Stats()[0].Pending
	if pending < len(acked) {
		t.Fatalf("outbox holds %d notices after kill -9, %d were acknowledged", pending, len(acked))
	}
	run(t, ob)
	// Every acknowledged notice arrives, in order, signed; a duplicate is
	// allowed only as a repeat of the same id.
	last := -1
	seen := map[string]bool{}
	for len(seen) < pending {
		d := r.next(t)
		i := seqOf(t, d)
		if d.ID != fmt.Sprintf("msg_%06d", i) {
			t.Fatalf("id %s carries notice %d", d.ID, i)
		}
		if seen[d.ID] {
			if i != last {
				t.Fatalf("duplicate %s out of place", d.ID)
			}
			continue
		}
		if i != last+1 {
			t.Fatalf("notice %d after %d: gap or reorder", i, last)
		}
		seen[d.ID] = true
		last = i
	}
	for _, id := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged notice %s lost", id)
		}
	}
	t.Logf("kill -9: %d acknowledged, %d recovered and delivered", len(acked), pending)
}
