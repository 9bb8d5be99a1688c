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
	// password); nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Auth decides who may use the page, the API and /metrics: HTTP Basic users
// from a bcrypt users file, one API bearer token, and peers presenting a
// token derived from the gossip key. With no users and no token every
// request is allowed; CheckBind makes sure that only happens on loopback.
type Auth struct {
	users     map[string][]byte // user → bcrypt hash
	token     [32]byte          // sha256 of the API token
	hasToken  bool
	peer      string // the peer token itself (sent by us)
	peerSum   [32]byte
	hasPeer   bool
	dummyHash []byte
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time

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
		cache: map[[32]byte]time.Time{}}
	if a.ttl <= 0 {
		a.ttl = time.Minute
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if o.UsersFile != "" {
		b, err := os.ReadFile(o.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("read users_file: %w", err)
		}
		users, err := ParseUsers(o.UsersFile, b)
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
func (a *Auth) Configured() bool { return a != nil && (len(a.users) > 0 || a.hasToken) }

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

// Wrap returns next guarded by a; /healthz stays open so that load
// balancers and supervisors need no credentials.
func (a *Auth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		id, ok := a.check(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "401 unauthorized: log in with a user from [http] users_file or an API token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// check returns the caller's identity and whether it may proceed.
func (a *Auth) check(r *http.Request) (string, bool) {
	if !a.Configured() {
		// Peers still send their token; any caller is fine here.
		return IdentityOpen, true
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		// Both comparisons always run, so timing says nothing about which
		// kind of token was close.
		okTok := subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1 && a.hasToken
		okPeer := subtle.ConstantTimeCompare(sum[:], a.peerSum[:]) == 1 && a.hasPeer
		switch {
		case okPeer:
			return IdentityPeer, true
		case okTok:
			return IdentityToken, true
		}
		a.log.Warn("http auth failed", "kind", "bearer", "remote", r.RemoteAddr)
		return "", false
	}
	user, pass, ok := r.BasicAuth()
	if !ok || len(a.users) == 0 {
		return "", false
	}
	if a.checkUser(user, pass) {
		return user, true
	}
	a.log.Warn("http auth failed", "kind", "basic", "user", user, "remote", r.RemoteAddr)
	return "", false
}

func (a *Auth) checkUser(user, pass string) bool {
	hash, known := a.users[user]
	if !known {
		bcrypt.CompareHashAndPassword(a.dummyHash, []byte(pass))
		return false
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
	a.mu.Lock()
	exp, hit := a.cache[key]
	a.mu.Unlock()
	if hit && now.Before(exp) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.cache) >= maxCache {
		clear(a.cache)
	}
	a.cache[key] = now.Add(a.ttl)
	a.mu.Unlock()
	return true
}

// CheckUser tells whether user and password match users_file; the live
// re-stream uses it for RTSP Basic auth.
func (a *Auth) CheckUser(user, pass string) bool {
	return a != nil && a.checkUser(user, pass)
}
