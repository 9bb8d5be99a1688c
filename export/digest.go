package export

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// RFC 9530 headers of a segment download. A client that sends
// WantReprDigestHeader ("sha-256=10") on GET RouteFile gets, for a closed
// segment, ReprDigestHeader: the SHA-256 of the whole file whatever Range
// it asked for, so a copy resumed across requests is still checked end to
// end. Open segments are still growing and have no digest.
const (
	WantReprDigestHeader = "Want-Repr-Digest"
	ReprDigestHeader     = "Repr-Digest"
)

// wantsSHA256 reports whether a Want-Repr-Digest value asks for sha-256
// with a non-zero preference.
func wantsSHA256(v string) bool {
	for _, item := range strings.Split(v, ",") {
		alg, pref, _ := strings.Cut(strings.TrimSpace(item), "=")
		if strings.EqualFold(strings.TrimSpace(alg), "sha-256") && strings.TrimSpace(pref) != "0" {
			return true
		}
	}
	return false
}

// FormatReprDigest is the Repr-Digest value of a SHA-256 sum.
func FormatReprDigest(sum []byte) string {
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

// ParseReprDigest returns the SHA-256 sum a Repr-Digest value carries.
func ParseReprDigest(v string) ([]byte, error) {
	for _, item := range strings.Split(v, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(alg), "sha-256") {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
			return nil, fmt.Errorf("repr-digest: malformed sha-256 value %q", val)
		}
		sum, err := base64.StdEncoding.DecodeString(val[1 : len(val)-1])
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("repr-digest: sha-256 value is not %d base64 bytes", sha256.Size)
		}
		return sum, nil
	}
	return nil, errors.New("repr-digest: no sha-256 value")
}

// fileSHA256 hashes r from its start.
func fileSHA256(r io.ReaderAt, size int64) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
