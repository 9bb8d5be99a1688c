// Package webhook tells the site's PSIM what happened (a server died, its
// cameras moved, they came back) with signed HTTP notices following the
// Standard Webhooks specification (https://www.standardwebhooks.com). Notices
// go through a durable bbolt outbox so that none is lost to a dead receiver,
// a restart or a kill -9, and each target is served by its own goroutine so
// that one slow or dead receiver never delays another, nor the recorder.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret; the rest is the base64 key.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a receiver lets webhook-timestamp stray from
// its clock when Verify is given tolerance 0 (the spec's recommendation).
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify and ParseSecret. They never carry key material.
var (
	ErrBadSecret        = errors.New(`secret must be "whsec_" followed by a base64 key`)
	ErrMissingHeaders   = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrBadTimestamp     = errors.New("webhook-timestamp is not unix seconds")
	ErrTimestampSkew    = errors.New("webhook-timestamp outside tolerance")
	ErrSignatureInvalid = errors.New("no valid v1 signature")
)

// ParseSecret returns the HMAC key of a "whsec_<base64>" secret. The error
// never includes the secret; callers add where it came from.
func ParseSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(secret), SecretPrefix)
	if !ok || rest == "" {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		// Some generators drop the padding.
		key, err = base64.RawStdEncoding.DecodeString(rest)
	}
	if err != nil || len(key) == 0 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// LoadSecretFile reads a secret file (as named by psim.secret_file),
// checks its shape and returns the secret. Errors name the file, never its
// content.
func LoadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read webhook secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if _, err := ParseSecret(s); err != nil {
		return "", fmt.Errorf("webhook secret %s: %w", path, err)
	}
	return s, nil
}

// Sign returns the webhook-signature value ("v1,<base64>") for one attempt:
// the HMAC-SHA256 of "id.timestamp.body" under the secret's key.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	return sign(key, id, ts.Unix(), body), nil
}

func sign(key []byte, id string, unix int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(unix, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// setHeaders puts the Standard Webhooks headers of one attempt on h.
func setHeaders(h http.Header, key []byte, id string, now time.Time, body []byte) {
	unix := now.Unix()
	h.Set("Content-Type", "application/json")
	// Direct map writes keep the spec's lower-case names on the wire
	// (Set would canonicalize them to Webhook-Id); receivers match
	// case-insensitively either way.
	h[HeaderID] = []string{id}
	h[HeaderTimestamp] = []string{strconv.FormatInt(unix, 10)}
	h[HeaderSignature] = []string{sign(key, id, unix, body)}
}

// Verify checks a received notice the way a receiver should: all three
// headers present, the timestamp within tolerance of now (0 means
// DefaultTolerance), and at least one "v1," signature matching the body.
// The comparison is constant-time.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := headerValue(header, HeaderID), headerValue(header, HeaderTimestamp), headerValue(header, HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampSkew
	}
	want := []byte(sign(key, id, unix, body))
	// The header may carry several space-separated signatures (key rotation).
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrSignatureInvalid
}

// headerValue finds name whether the header map was filled by a server
// (canonical keys) or by hand with the spec's lower-case keys.
func headerValue(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
