package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCertPEM returns a self-signed CA certificate and its key, as PEM.
func testCertPEM(t *testing.T, cn string) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(k)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestCAFile: [http] ca_file is resolved beside the config, must hold PEM
// certificates, and a bad one is reported at its line with the others.
func TestCAFile(t *testing.T) {
	ca1, key1 := testCertPEM(t, "site CA 1")
	ca2, _ := testCertPEM(t, "site CA 2")
	broken := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER at all")})
	for _, tc := range []struct {
		name    string
		file    []byte // written as ca.pem beside the config; nil: not written
		value   string // ca_file value; "ca.pem" is relative to the config
		want    string // fragment of the problem at line 6; "" means valid
		wantN   int    // certificates ReadCAFile returns when valid
		noLeaks string // must not appear in the problem
	}{
		{name: "one certificate", file: ca1, value: "ca.pem", wantN: 1},
		{name: "bundle with a key block between", file: append(append(append([]byte{}, ca1...), key1...), ca2...), value: "ca.pem", wantN: 2},
		{name: "text around the blocks", file: append([]byte("site CA, issued 2024\n"), ca1...), value: "ca.pem", wantN: 1},
		{name: "missing", value: "nope.pem", want: "rec.toml:6: http.ca_file: cannot read "},
		{name: "empty", file: []byte{}, value: "ca.pem", want: "rec.toml:6: http.ca_file: " + "DIR/ca.pem: no PEM certificate found"},
		{name: "a private key only", file: key1, value: "ca.pem", want: "ca.pem: no PEM certificate found", noLeaks: "MHcCAQEE"},
		{name: "DER instead of PEM", file: []byte{0x30, 0x82, 0x01, 0x0a}, value: "ca.pem", want: "no PEM certificate found"},
		{name: "broken certificate block", file: append(append([]byte{}, ca1...), broken...), value: "ca.pem", want: "ca.pem: certificate 2 does not parse"},
		{name: "directory", file: ca1, value: ".", want: "rec.toml:6: http.ca_file: cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "name = \"rec-a\"\ndata_dir = \"/d\"\n[listen]\nhttp = \"127.0.0.1:8080\"\n[http]\nca_file = \"" + tc.value + "\"\n"
			p := writeConfig(t, src)
			dir := filepath.Dir(p)
			if tc.file != nil {
				must(t, os.WriteFile(filepath.Join(dir, "ca.pem"), tc.file, 0o600))
			}
			c, err := Load(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if want := filepath.Join(dir, tc.value); c.HTTP.CAFile != want {
					t.Errorf("HTTP.CAFile = %q, want %q (resolved beside the config)", c.HTTP.CAFile, want)
				}
				certs, err := ReadCAFile(c.HTTP.CAFile)
				if err != nil || len(certs) != tc.wantN {
					t.Errorf("ReadCAFile: %d certificates, %v; want %d", len(certs), err, tc.wantN)
				}
				return
			}
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("problem = %v\nwant it to contain %q", err, want)
			}
			if tc.noLeaks != "" && strings.Contains(err.Error(), tc.noLeaks) {
				t.Errorf("problem shows the file's content: %v", err)
			}
		})
	}
}

// TestCAFileReportedWithOthers: a bad ca_file does not hide the rest.
func TestCAFileReportedWithOthers(t *testing.T) {
	src := "name = \"rec-a\"\ndata_dir = \"/d\"\n[listen]\nhttp = \"nonsense\"\n[http]\nca_file = \"ca.pem\"\ncert_file = \"cert.pem\"\n"
	p := writeConfig(t, src)
	must(t, os.WriteFile(filepath.Join(filepath.Dir(p), "ca.pem"), []byte("hello\n"), 0o600))
	_, err := Load(p)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	for _, want := range []string{"rec.toml:4: listen.http:", "rec.toml:6: http.ca_file: " + filepath.Dir(p) + "/ca.pem: no PEM certificate found", "cert_file and key_file must be set together"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}

// TestCAFileSummary: `buddyrec check` says which certificates peers are
// checked against, and that without TLS ca_file serves only PSIM targets.
func TestCAFileSummary(t *testing.T) {
	ca, key := testCertPEM(t, "site CA")
	for _, tc := range []struct {
		name, http, want string
	}{
		{"tls with ca", "cert_file = \"cert.pem\"\nkey_file = \"key.pem\"\nca_file = \"ca.pem\"\n", "peers' and PSIM certificates checked against the system store and DIR/ca.pem"},
		{"tls without ca", "cert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n", "peers' and PSIM certificates checked against the system store\n"},
		{"ca without tls", "ca_file = \"ca.pem\"\n", "ca_file DIR/ca.pem is used only for https:// PSIM targets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, "name = \"rec-a\"\ndata_dir = \"/d\"\n[http]\n"+tc.http)
			dir := filepath.Dir(p)
			for f, b := range map[string][]byte{"ca.pem": ca, "cert.pem": ca, "key.pem": key} {
				must(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
			}
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if sum, want := c.Summary(), strings.ReplaceAll(tc.want, "DIR", dir); !strings.Contains(sum, want) {
				t.Errorf("summary lacks %q:\n%s", want, sum)
			}
		})
	}
}
