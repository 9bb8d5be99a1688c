package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hashes are made once at MinCost: bcrypt is slow under -race.
var testHashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, pw := range []string{"alice-pw", "bob-pw"} {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), MinCost)
		if err != nil {
			panic(err)
		}
		out[pw] = string(h)
	}
	return out
})

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func usersFile(t *testing.T) string {
	h := testHashes()
	return writeFile(t, "users", "# technicians\nalice:"+h["alice-pw"]+"\n\nbob:"+h["bob-pw"]+"\n")
}

func newTestAuth(t *testing.T, o AuthOptions) *Auth {
	t.Helper()
	a, err := NewAuth(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuthWrap(t *testing.T) {
	full := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), TokenFile: writeFile(t, "token", apiToken+"\n"), GossipKey: gossipKey})
	open := newTestAuth(t, AuthOptions{})
	keyOnly := newTestAuth(t, AuthOptions{GossipKey: gossipKey})
	tokenOnly := newTestAuth(t, AuthOptions{TokenFile: writeFile(t, "token", apiToken)})
	_, peerHdr := full.PeerHeader()
	otherPeer := "Bearer " + PeerToken([]byte("another-site-key-0123456789abcde"))

	tests := []struct {
		name   string
		auth   *Auth
		path   string
		header string
		want   int
		who    string
	}{
		{"no credentials", full, "/", "", 401, ""},
		{"wrong password", full, "/", basic("alice", "nope"), 401, ""},
		{"unknown user", full, "/", basic("mallory", "alice-pw"), 401, ""},
		{"other user's password", full, "/", basic("bob", "alice-pw"), 401, ""},
		{"right password", full, "/", basic("alice", "alice-pw"), 200, "alice"},
		{"second user", full, "/api/v1/cameras", basic("bob", "bob-pw"), 200, "bob"},
		{"api token", full, "/api/v1/cameras", "Bearer " + apiToken, 200, IdentityToken},
		{"wrong token", full, "/api/v1/cameras", "Bearer " + apiToken + "x", 401, ""},
		{"token as password", full, "/", basic("alice", apiToken), 401, ""},
		{"peer token", full, "/api/v1/timeline", peerHdr, 200, IdentityPeer},
		{"peer token of another site", full, "/api/v1/timeline", otherPeer, 401, ""},
		{"empty bearer", full, "/metrics", "Bearer ", 401, ""},
		{"unknown scheme", full, "/metrics", "Digest x", 401, ""},
		{"healthz is open", full, "/healthz", "", 200, ""},
		{"not configured: open", open, "/", "", 200, IdentityOpen},
		{"gossip key alone does not close", keyOnly, "/", "", 200, IdentityOpen},
		{"token only: basic refused", tokenOnly, "/", basic("alice", "alice-pw"), 401, ""},
		{"token only: token", tokenOnly, "/metrics", "Bearer " + apiToken, 200, IdentityToken},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var who string
			h := tt.auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				who = Identity(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			// One address per case: failures of one case must not
			// throttle the next (TestLoginThrottling covers that).
			req.RemoteAddr = fmt.Sprintf("192.0.2.%d:1234", i+1)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if who != tt.who {
				t.Errorf("identity %q, want %q", who, tt.who)
			}
			if tt.want == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="buddyrec"`) {
					t.Errorf("WWW-Authenticate %q", got)
				}
				for _, secret := range []string{apiToken, "alice-pw", PeerToken(gossipKey), testHashes()["alice-pw"]} {
					if strings.Contains(rec.Body.String(), secret) {
						t.Errorf("401 body leaks a secret: %q", rec.Body.String())
					}
				}
			}
		})
	}
}

func TestAuthCache(t *testing.T) {
	now := testNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), CacheTTL: time.Minute, Now: clock})
	check := func(pass string) bool {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", basic("alice", pass))
		_, ok := a.check(req)
		return ok
	}
	cached := func() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.cache) }

	if check("wrong") || cached() != 0 {
		t.Fatalf("failed login must not be cached (cache %d)", cached())
	}
	if !check("alice-pw") || cached() != 1 {
		t.Fatalf("successful login must be cached (cache %d)", cached())
	}
	if check("alice-pw-but-longer") {
		t.Fatal("a cached login must not admit another password")
	}
	var exp time.Time
	for _, e := range a.cache {
		exp = e
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if !check("alice-pw") {
		t.Fatal("login after cache expiry failed")
	}
	for _, e := range a.cache {
		if !e.After(exp) {
			t.Errorf("expired entry not refreshed: %v", e)
		}
	}
}

func TestParseUsers(t *testing.T) {
	h := testHashes()["alice-pw"]
	weak, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		wantErr []string // substrings; nil means success
	}{
		{"ok with comments", "# c\n\nalice:" + h + "\n", nil},
		{"missing colon", "alice:" + h + "\nbob\n", []string{"users:2: want user:bcrypt-hash"}},
		{"not bcrypt", "alice:plaintext\n", []string{"users:1:", `"alice"`, "not a bcrypt hash"}},
		{"cost too low", "\nalice:" + string(weak) + "\n", []string{"users:2:", "cost 4 is below 10"}},
		{"duplicate", "alice:" + h + "\nalice:" + h + "\n", []string{"users:2:", "listed twice"}},
		{"empty name", ":" + h + "\n", []string{"users:1:", "non-empty"}},
		{"every problem reported", "x\nalice:nope\n", []string{"users:1:", "users:2:"}},
		{"no users", "# nobody\n", []string{"no users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := ParseUsers("users", []byte(tt.content))
			if tt.wantErr == nil {
				if err != nil || len(users) != 1 {
					t.Fatalf("users %v, err %v", users, err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), h) || strings.Contains(err.Error(), "plaintext") {
				t.Errorf("error quotes a secret: %q", err)
			}
		})
	}
}

func TestNewAuthFiles(t *testing.T) {
	tests := []struct {
		name    string
		o       AuthOptions
		wantErr string
	}{
		{"missing users file", AuthOptions{UsersFile: filepath.Join(t.TempDir(), "none")}, "read users_file"},
		{"short token", AuthOptions{TokenFile: writeFile(t, "t", "changeme\n")}, "at least 16"},
		{"token with space", AuthOptions{TokenFile: writeFile(t, "t", "0123456789abcdef 0123")}, "one line"},
		{"bad users line", AuthOptions{UsersFile: writeFile(t, "users", "alice\n")}, "users:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAuth(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "changeme") {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(h)); cost < MinCost {
		t.Errorf("cost %d below %d", cost, MinCost)
	}
	if _, err := ParseUsers("users", []byte("carol:"+h+"\n")); err != nil {
		t.Fatalf("a HashPassword line must load: %v", err)
	}
	a, err := NewAuth(AuthOptions{UsersFile: writeFile(t, "users", "carol:"+h+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !a.CheckUser("192.0.2.1", "carol", "s3cret") || a.CheckUser("192.0.2.1", "carol", "s3cre") {
		t.Error("hash does not verify the password")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password accepted")
	}
}

func TestPeerToken(t *testing.T) {
	a, b := PeerToken(gossipKey), PeerToken(gossipKey)
	if a != b {
		t.Fatal("peer token not deterministic")
	}
	if a == PeerToken([]byte("0123456789abcdef0123456789abcdeX")) {
		t.Fatal("different keys give the same token")
	}
	if strings.Contains(a, string(gossipKey)) || strings.Contains(a, base64.StdEncoding.EncodeToString(gossipKey)) {
		t.Fatal("token reveals the key")
	}
	if k, v := newTestAuth(t, AuthOptions{}).PeerHeader(); k != "" || v != "" {
		t.Errorf("no key: header %q %q", k, v)
	}
}

func TestCheckBind(t *testing.T) {
	tests := []struct {
		addr       string
		configured bool
		ok         bool
	}{
		{"127.0.0.1:8080", false, true},
		{"127.0.0.2:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"[::]:8080", false, false},
		{"10.0.0.11:8080", false, false},
		{"rec-a.example:8080", false, false},
		{"0.0.0.0:8080", true, true},
		{"10.0.0.11:8080", true, true},
		{"nonsense", false, false},
	}
	for _, tt := range tests {
		err := CheckBind(tt.addr, tt.configured)
		if (err == nil) != tt.ok {
			t.Errorf("CheckBind(%q, %v) = %v, want ok=%v", tt.addr, tt.configured, err, tt.ok)
		}
	}
	err := CheckBind("0.0.0.0:8080", false)
	if want := "refusing to serve http on 0.0.0.0:8080 without [http] users_file"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to contain %q", err, want)
	}
}

// TestLoginThrottling: an address hammering wrong passwords costs at most
// FailureBurst bcrypt comparisons before it gets 429 with Retry-After; the
// burst is logged in two lines, not one per try; a user already logged in
// from that address, and anyone from another address, still gets in; the
// address may try again once Retry-After has passed.
func TestLoginThrottling(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var logs bytes.Buffer
	var logMu sync.Mutex
	a := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), Now: clock, FailureBurst: 5, FailureEvery: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})
	var compares atomic.Int64
	a.compare = func(h, p []byte) error { compares.Add(1); return bcrypt.CompareHashAndPassword(h, p) }
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func(remote, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote + ":40000"
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const attacker, other = "198.51.100.7", "198.51.100.8"
	if c := do(attacker, basic("alice", "alice-pw")).Code; c != 200 { // alice logged in before the attack
		t.Fatalf("login: %d", c)
	}
	compares.Store(0)
	codes := map[int]int{}
	var retry string
	for i := 0; i < 100; i++ {
		rec := do(attacker, basic("alice", fmt.Sprintf("guess-%d", i)))
		codes[rec.Code]++
		if rec.Code == http.StatusTooManyRequests {
			retry = rec.Header().Get("Retry-After")
		}
	}
	if codes[401] != 5 || codes[429] != 95 {
		t.Errorf("answers %v, want 5×401 then 95×429", codes)
	}
	if n := compares.Load(); n != 5 {
		t.Errorf("%d bcrypt comparisons for 100 wrong passwords, want 5", n)
	}
	if sec, err := strconv.Atoi(retry); err != nil || sec < 1 || sec > 6 {
		t.Errorf("Retry-After %q, want 1..6 seconds", retry)
	}
	// Unknown users and tokens count against the same address.
	if c := do(attacker, basic("mallory", "x")).Code; c != 429 {
		t.Errorf("unknown user from a throttled address: %d, want 429", c)
	}
	if c := do(attacker, "Bearer not-the-token-0123456789").Code; c != 429 {
		t.Errorf("wrong token from a throttled address: %d, want 429", c)
	}
	logMu.Lock()
	lines := strings.Count(logs.String(), "\n")
	text := logs.String()
	logMu.Unlock()
	if lines != 2 || !strings.Contains(text, "login failed") || !strings.Contains(text, "throttling") {
		t.Errorf("%d log lines for the burst, want 2 (first failure, throttling):\n%s", lines, text)
	}
	if strings.Contains(text, "guess-") || strings.Contains(text, "alice-pw") {
		t.Errorf("log quotes a password:\n%s", text)
	}
	// A cached login from the attacker's own address still works (no
	// bcrypt), and a fresh login from another address is checked.
	compares.Store(0)
	if c := do(attacker, basic("alice", "alice-pw")).Code; c != 200 {
		t.Errorf("logged-in user from a throttled address: %d, want 200", c)
	}
	if c := do(other, basic("bob", "bob-pw")).Code; c != 200 {
		t.Errorf("correct password from another address: %d, want 200", c)
	}
	if n := compares.Load(); n != 1 {
		t.Errorf("%d comparisons for a cached and a fresh login, want 1", n)
	}
	// After Retry-After the address gets one more try.
	sec, _ := strconv.Atoi(retry)
	advance(time.Duration(sec) * time.Second)
	if c := do(attacker, basic("alice", "wrong-again")).Code; c != 401 {
		t.Errorf("after Retry-After: %d, want 401 (a real check)", c)
	}
	if c := do(attacker, basic("alice", "wrong-again")).Code; c != 429 {
		t.Errorf("second try right after: %d, want 429", c)
	}
	// RTSP logins share the throttle.
	if a.CheckUser(attacker, "alice", "nope") {
		t.Error("wrong RTSP password accepted")
	}
	if !a.CheckUser(other, "alice", "alice-pw") {
		t.Error("right RTSP password from another address refused")
	}
}

// TestLoginChecksBounded: with MaxChecks 1 no two bcrypt comparisons run at
// once, whatever the number of addresses trying; a login that cannot get a
// check within CheckWait is answered 503 with Retry-After.
func TestLoginChecksBounded(t *testing.T) {
	a := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), MaxChecks: 1, CheckWait: 200 * time.Millisecond})
	var running, peak atomic.Int64
	release := make(chan struct{})
	a.compare = func(h, p []byte) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		return bcrypt.ErrMismatchedHashAndPassword
	}
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	codes := make(chan int, 20)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = fmt.Sprintf("203.0.113.%d:1", i+1)
			req.Header.Set("Authorization", basic("alice", "wrong"))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			codes <- rec.Code
		}()
	}
	time.Sleep(time.Second) // all but the one holding the check give up
	close(release)
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if peak.Load() != 1 {
		t.Errorf("%d comparisons ran at once, want 1", peak.Load())
	}
	if got[503] == 0 || got[401] == 0 || got[401]+got[503] != 20 {
		t.Errorf("answers %v, want some 401 and the rest 503", got)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestAckedBy(t *testing.T) {
	ctxAs := func(id string) context.Context { return context.WithValue(context.Background(), identityKey{}, id) }
	for _, tc := range []struct {
		id, claimed, want string
	}{
		{"alice", "bob", "alice"},
		{"alice", "", "alice"},
		{IdentityToken, "op-7", "api-token for op-7"},
		{IdentityToken, "", "api-token"},
		{IdentityPeer, "alice", "alice"}, // relayed from the peer's page, which logged alice in
		{IdentityPeer, "", "peer"},
		{IdentityOpen, "night shift", "night shift"},
		{IdentityOpen, "", "local"},
		{"", "", "local"},
		{IdentityPeer, strings.Repeat("x", 100), strings.Repeat("x", 64)},
	} {
		if got := AckedBy(ctxAs(tc.id), tc.claimed); got != tc.want {
			t.Errorf("AckedBy(%q, %q) = %q, want %q", tc.id, tc.claimed, got, tc.want)
		}
	}
}
