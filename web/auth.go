package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

// MinCost is the lowest bcrypt cost accepted in a users_file: cheaper
// hashes are too quick to brute-force if the file leaks.
const MinCost = 10

// PasswordCost is the bcrypt cost HashPassword uses.
const PasswordCost = 11

// MinTokenLen is the shortest API token accepted in a token_file, so that a
// placeholder such as "changeme" is refused instead of guarded.
const MinTokenLen = 16

// peerTokenLabel is the HMAC message peers derive their shared token from;
// the version suffix lets a future scheme coexist during an upgrade.
const peerTokenLabel = "buddyrec-peer-v1"

// Realm is the HTTP Basic realm browsers show in their login prompt.
const Realm = "buddyrec"

// Identity names of callers that did not log in as a user.
const (
	IdentityToken = "api-token"
	IdentityPeer  = "peer"
	IdentityOpen  = "local" // no credentials configured (loopback only)
)

// AuthOptions configure access control. Paths come from the [http] section
// of the config; GossipKey is the decoded cluster key.
type AuthOptions struct {
	// UsersFile holds "user:$2a$..." lines (bcrypt); empty means no users.
	UsersFile string
	// TokenFile holds one bearer token for API clients; empty means none.
	TokenFile string
	// GossipKey derives the server-to-server token; nil means peers cannot
	// authenticate to each other (their calls then get 401).
	GossipKey []byte
	// CacheTTL is how long a successful bcrypt check is remembered, so a
	// page refreshing every 5 s does not pay bcrypt each time. 0 means 1 min.
	CacheTTL time.Duration
	// Logger receives failed logins (user name and address, never the
	// password), one line when a burst starts and one when it is
	// throttled; nil discards.
	Logger *slog.Logger
	// FailureBurst is how many failed logins one address may make before
	// it is throttled (default 5); FailureEvery is how often it earns one
	// more try back (default 6s, so 10 a minute at most).
	FailureBurst int
	FailureEvery time.Duration
	// MaxChecks bounds the bcrypt comparisons running at once (default 1):
	// each costs about 0.1–0.2 s of a core, and the cores are recording's.
	MaxChecks int
	// CheckWait is how long a login waits for a free check before it is
	// answered 503 (default 3s).
	CheckWait time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Auth decides who may use the page, the API and /metrics: HTTP Basic users
// from a bcrypt users file, one API bearer token, and peers presenting a
// token derived from the gossip key. With no users and no token every
// request is allowed; CheckBind makes sure that only happens on loopback.
type Auth struct {
	// users (user → bcrypt hash) and dummyHash change under mu when the
	// users file is reloaded (SetUsersFile); read them with userSet.
	users     map[string][]byte
	token     [32]byte // sha256 of the API token
	hasToken  bool
	peer      string // the peer token itself (sent by us)
	peerSum   [32]byte
	hasPeer   bool
	dummyHash []byte
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time

	// checks holds one token per bcrypt comparison allowed at once.
	checks    chan struct{}
	checkWait time.Duration
	limiter   *failureLimiter
	// compare is bcrypt.CompareHashAndPassword; tests count calls.
	compare func(hash, pass []byte) error

	mu    sync.Mutex
	cache map[[32]byte]time.Time // sha256(user \x00 password \x00 hash) → expiry
}

// maxCache bounds the login cache; when full it is cleared, which only costs
// one bcrypt per active user.
const maxCache = 1024

// NewAuth reads the users and token files. Every problem names the file and
// line; no error ever quotes a hash or a token.
func NewAuth(o AuthOptions) (*Auth, error) {
	a := &Auth{users: map[string][]byte{}, ttl: o.CacheTTL, log: o.Logger, now: o.Now,
		cache: map[[32]byte]time.Time{}, checkWait: o.CheckWait, compare: bcrypt.CompareHashAndPassword}
	if a.ttl <= 0 {
		a.ttl = time.Minute
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if o.MaxChecks <= 0 {
		o.MaxChecks = 1
	}
	a.checks = make(chan struct{}, o.MaxChecks)
	if a.checkWait <= 0 {
		a.checkWait = 3 * time.Second
	}
	a.limiter = newFailureLimiter(o.FailureBurst, o.FailureEvery, a.log)
	if o.UsersFile != "" {
		users, err := ReadUsersFile(o.UsersFile)
		if err != nil {
			return nil, err
		}
		a.users = users
	}
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < MinTokenLen {
			return nil, fmt.Errorf("token_file %s: token is %d characters, want at least %d", o.TokenFile, len(tok), MinTokenLen)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("token_file %s: token must be one line without spaces", o.TokenFile)
		}
		a.token, a.hasToken = sha256.Sum256([]byte(tok)), true
	}
	if len(o.GossipKey) > 0 {
		a.peer = PeerToken(o.GossipKey)
		a.peerSum, a.hasPeer = sha256.Sum256([]byte(a.peer)), true
	}
	for _, h := range a.users {
		// Unknown users are checked against a real user's hash (same cost)
		// so that a wrong name takes as long as a wrong password.
		a.dummyHash = h
		break
	}
	return a, nil
}

// ParseUsers parses the content of a users file named name: one
// "user:bcrypt-hash" per line, blank lines and lines starting with # ignored.
func ParseUsers(name string, content []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(content))
	var errs []error
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		user, hash, ok := strings.Cut(s, ":")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s:%d: want user:bcrypt-hash", name, line))
			continue
		case user == "" || strings.IndexFunc(user, unicode.IsSpace) >= 0:
			errs = append(errs, fmt.Errorf("%s:%d: user name must be non-empty without spaces", name, line))
			continue
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: not a bcrypt hash (make one with buddyrec passwd)", name, line, user))
			continue
		}
		if cost < MinCost {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: bcrypt cost %d is below %d", name, line, user, cost, MinCost))
			continue
		}
		if _, dup := users[user]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q listed twice", name, line, user))
			continue
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, line+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users; add a line user:hash (see buddyrec passwd)", name)
	}
	return users, nil
}

// HashPassword returns the users_file line value for password (bcrypt at
// PasswordCost), for the `buddyrec passwd` command.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// PeerToken is the bearer token servers of one site present to each other:
// base64(HMAC-SHA256(gossip key, "buddyrec-peer-v1")). Only holders of the
// gossip key can compute it, and the key itself cannot be recovered from it.
func PeerToken(gossipKey []byte) string {
	m := hmac.New(sha256.New, gossipKey)
	m.Write([]byte(peerTokenLabel))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Configured reports whether any user or API token is set, i.e. whether
// requests are checked at all.
func (a *Auth) Configured() bool { return a != nil && (a.hasUsers() || a.hasToken) }

// PeerHeader returns the header name and value to add to calls to other
// servers of the site; both are empty when there is no gossip key.
func (a *Auth) PeerHeader() (name, value string) {
	if a == nil || !a.hasPeer {
		return "", ""
	}
	return "Authorization", "Bearer " + a.peer
}

// CheckBind explains why serving HTTP on addr is refused: without users or a
// token the page, API and /metrics are open, which is only acceptable when
// nobody but this machine can reach them.
func CheckBind(addr string, configured bool) error {
	if configured {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to serve http on %s without [http] users_file or token_file: "+
		"anyone on the network could watch the site; add users (buddyrec passwd) or listen on 127.0.0.1", addr)
}

type identityKey struct{}

// Identity returns who made the request, as set by Auth.Wrap: a user name,
// IdentityToken, IdentityPeer or IdentityOpen; "" outside Wrap.
func Identity(ctx context.Context) string {
	s, _ := ctx.Value(identityKey{}).(string)
	return s
}

// AckedBy is whom an alarm acknowledgement made with ctx is recorded
// under, given the name claimed in the request: a user is recorded by the
// name they logged in with, whatever they claim; an API token as
// "api-token", with the name its client gives ("api-token for psim-op-3"),
// since one token serves a whole integration; a peer relays an
// acknowledgement its own page authenticated, so its claim is the user
// there; without access control (loopback only) the claim, or "local".
func AckedBy(ctx context.Context, claimed string) string {
	claimed = strings.TrimSpace(claimed)
	if len(claimed) > 64 {
		claimed = claimed[:64]
	}
	switch id := Identity(ctx); id {
	case IdentityPeer, IdentityOpen, "":
		if claimed != "" {
			return claimed
		}
		if id == "" {
			return IdentityOpen
		}
		return id
	case IdentityToken:
		if claimed != "" && claimed != IdentityToken {
			return IdentityToken + " for " + claimed
		}
		return IdentityToken
	default:
		return id
	}
}

// Wrap returns next guarded by a; /healthz stays open so that load
// balancers and supervisors need no credentials. An address that keeps
// failing is answered 429 with Retry-After, without a bcrypt check; when
// every check is busy a login is answered 503.
func (a *Auth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		id, v := a.authenticate(r)
		switch v.result {
		case verdictOK:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
			return
		case verdictThrottled:
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(v.retry)))
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "429 too many failed logins from your address: try again later", http.StatusTooManyRequests)
			return
		case verdictBusy:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "503 too many logins being checked: try again in a second", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "401 unauthorized: log in with a user from [http] users_file or an API token", http.StatusUnauthorized)
	})
}

func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// verdictResult is the outcome of checking credentials.
type verdictResult int

const (
	verdictDenied    verdictResult = iota // wrong or missing credentials: 401
	verdictOK                             // proceed
	verdictThrottled                      // the address failed too often: 429
	verdictBusy                           // no bcrypt check free in time: 503
)

// verdict is a credentials check's outcome; retry is when a throttled
// address may try again.
type verdict struct {
	result verdictResult
	retry  time.Duration
}

// check returns the caller's identity and whether it may proceed.
func (a *Auth) check(r *http.Request) (string, bool) {
	id, v := a.authenticate(r)
	return id, v.result == verdictOK
}

// authenticate returns the caller's identity and the verdict.
func (a *Auth) authenticate(r *http.Request) (string, verdict) {
	if !a.Configured() {
		// Peers still send their token; any caller is fine here.
		return IdentityOpen, verdict{result: verdictOK}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", verdict{}
	}
	remote := remoteIP(r.RemoteAddr)
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		// Both comparisons always run, so timing says nothing about which
		// kind of token was close.
		okTok := subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1 && a.hasToken
		okPeer := subtle.ConstantTimeCompare(sum[:], a.peerSum[:]) == 1 && a.hasPeer
		switch {
		case okPeer:
			return IdentityPeer, verdict{result: verdictOK}
		case okTok:
			return IdentityToken, verdict{result: verdictOK}
		}
		if retry, limited := a.limiter.throttled(remote, a.now()); limited {
			return "", verdict{result: verdictThrottled, retry: retry}
		}
		a.limiter.failed(remote, "bearer", "", a.now())
		return "", verdict{}
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !a.hasUsers() {
		return "", verdict{}
	}
	v := a.verify(r.Context(), remote, "basic", user, pass)
	if v.result == verdictOK {
		return user, v
	}
	return "", v
}

// remoteIP is the address part of an http.Request's RemoteAddr.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// verify checks user and password for a caller at remote: a login
// remembered from the last CacheTTL passes at once (so a throttled address
// does not lock out a user who is logged in); otherwise, unless remote is
// throttled, one bcrypt comparison runs, never more than MaxChecks at once.
func (a *Auth) verify(ctx context.Context, remote, kind, user, pass string) verdict {
	users, dummy := a.userSet()
	hash, known := users[user]
	if !known {
		hash = dummy
	}
	d := sha256.New()
	d.Write([]byte(user))
	d.Write([]byte{0})
	d.Write([]byte(pass))
	d.Write([]byte{0})
	d.Write(hash)
	var key [32]byte
	copy(key[:], d.Sum(nil))
	now := a.now()
	if known {
		a.mu.Lock()
		exp, hit := a.cache[key]
		a.mu.Unlock()
		if hit && now.Before(exp) {
			return verdict{result: verdictOK}
		}
	}
	if retry, limited := a.limiter.throttled(remote, now); limited {
		return verdict{result: verdictThrottled, retry: retry}
	}
	wait := time.NewTimer(a.checkWait)
	defer wait.Stop()
	select {
	case a.checks <- struct{}{}:
	case <-wait.C:
		return verdict{result: verdictBusy}
	case <-ctx.Done():
		return verdict{result: verdictBusy}
	}
	// Unknown users are checked against a real user's hash (same cost)
	// so that a wrong name takes as long as a wrong password.
	err := a.compare(hash, []byte(pass))
	<-a.checks
	if err != nil || !known {
		a.limiter.failed(remote, kind, user, a.now())
		return verdict{}
	}
	a.mu.Lock()
	if len(a.cache) >= maxCache {
		clear(a.cache)
	}
	a.cache[key] = now.Add(a.ttl)
	a.mu.Unlock()
	return verdict{result: verdictOK}
}

// CheckUser tells whether user and password match users_file, for a
// caller at IP address remote; the live re-stream uses it for RTSP Basic
// auth. It shares the cache, the bound on concurrent checks and the
// per-address throttling of failures with HTTP logins.
func (a *Auth) CheckUser(remote, user, pass string) bool {
	return a != nil && a.hasUsers() && a.verify(context.Background(), remote, "rtsp", user, pass).result == verdictOK
}
