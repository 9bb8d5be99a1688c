package webhook

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Vector published with the Standard Webhooks reference libraries.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesSpecVector(t *testing.T) {
	got, err := Sign(specSecret, specID, time.Unix(specTS, 0), []byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSig {
		t.Fatalf("Sign = %s, want %s", got, specSig)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(specTS, 0)
	hdr := func(id, ts, sig string) http.Header {
		h := http.Header{}
		if id != "" {
			h.Set(HeaderID, id)
		}
		if ts != "" {
			h.Set(HeaderTimestamp, ts)
		}
		if sig != "" {
			h.Set(HeaderSignature, sig)
		}
		return h
	}
	ts := strconv.Itoa(specTS)
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"valid", specSecret, hdr(specID, ts, specSig), specBody, now, nil},
		{"valid among several", specSecret, hdr(specID, ts, "v1,AAAA "+specSig), specBody, now, nil},
		{"valid at edge of tolerance", specSecret, hdr(specID, ts, specSig), specBody, now.Add(5 * time.Minute), nil},
		{"tampered body", specSecret, hdr(specID, ts, specSig), `{"test": 1}`, now, ErrSignatureInvalid},
		{"other id", specSecret, hdr("msg_other", ts, specSig), specBody, now, ErrSignatureInvalid},
		{"wrong secret", "whsec_" + "c2VjcmV0", hdr(specID, ts, specSig), specBody, now, ErrSignatureInvalid},
		{"too old", specSecret, hdr(specID, ts, specSig), specBody, now.Add(6 * time.Minute), ErrTimestampSkew},
		{"from the future", specSecret, hdr(specID, ts, specSig), specBody, now.Add(-6 * time.Minute), ErrTimestampSkew},
		{"bad timestamp", specSecret, hdr(specID, "yesterday", specSig), specBody, now, ErrBadTimestamp},
		{"missing signature", specSecret, hdr(specID, ts, ""), specBody, now, ErrMissingHeaders},
		{"missing id", specSecret, hdr("", ts, specSig), specBody, now, ErrMissingHeaders},
		{"v2 scheme only", specSecret, hdr(specID, ts, strings.Replace(specSig, "v1,", "v2,", 1)), specBody, now, ErrSignatureInvalid},
		{"secret without prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", hdr(specID, ts, specSig), specBody, now, ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyAt(tt.secret, tt.h, []byte(tt.body), 0, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	for _, s := range []string{"", "whsec_", "whsec_!!!notbase64", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		_, err := ParseSecret(s)
		if !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", s, err)
		}
		if s != "" && s != "whsec_" && err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error reveals the secret: %v", err)
		}
	}
	for _, s := range []string{specSecret, "whsec_c2VjcmV0", "whsec_c2VjcmV0Zg", " whsec_c2VjcmV0\n"} {
		if _, err := ParseSecret(s); err != nil {
			t.Errorf("ParseSecret(%q) = %v", s, err)
		}
	}
}

func TestLoadSecretFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.secret")
	bad := filepath.Join(dir, "bad.secret")
	os.WriteFile(good, []byte(specSecret+"\n"), 0o600)
	os.WriteFile(bad, []byte("hunter2-plain-password\n"), 0o600)
	s, err := LoadSecretFile(good)
	if err != nil || s != specSecret {
		t.Fatalf("LoadSecretFile(good) = %q, %v", s, err)
	}
	_, err = LoadSecretFile(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("LoadSecretFile(bad) = %v, want error naming the file and not the secret", err)
	}
	if _, err := LoadSecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestTargetWants(t *testing.T) {
	tests := []struct {
		events []string
		typ    string
		want   bool
	}{
		{nil, "server.down", true},
		{[]string{"failover.*"}, "failover.started", true},
		{[]string{"failover.*"}, "failback.completed", false},
		{[]string{"failover.*", "server.down"}, "server.down", true},
		{[]string{"server.down"}, "server.up", false},
		{[]string{"camera.*"}, TypeTest, true},
		{[]string{"*"}, "disk.full", true},
	}
	for _, tt := range tests {
		if got := (Target{Events: tt.events}).Wants(tt.typ); got != tt.want {
			t.Errorf("Wants(%v, %s) = %v, want %v", tt.events, tt.typ, got, tt.want)
		}
	}
}

func TestTargetValidate(t *testing.T) {
	ok := Target{Name: "psim", URL: "https://psim.example/hooks", Secret: specSecret}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Target{
		{URL: ok.URL, Secret: ok.Secret},
		{Name: "psim", URL: "ftp://psim.example/", Secret: ok.Secret},
		{Name: "psim", URL: "https:///nohost", Secret: ok.Secret},
		{Name: "psim", URL: ok.URL, Secret: "plain-secret-value"},
		{Name: "psim", URL: ok.URL, Secret: ok.Secret, Events: []string{"[bad"}},
	}
	for _, b := range bad {
		err := b.Validate()
		if err == nil {
			t.Errorf("Validate(%+v) accepted", b)
		} else if strings.Contains(err.Error(), "plain-secret-value") {
			t.Errorf("error reveals secret: %v", err)
		}
	}
}

func TestSafeURL(t *testing.T) {
	got := SafeURL("https://user:pw@psim.example:8443/hooks/vms?token=abc#frag")
	if got != "https://psim.example:8443/hooks/vms" {
		t.Fatalf("SafeURL = %q", got)
	}
}
