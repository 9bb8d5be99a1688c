package webhook

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestClientTrustsSiteRoots: a PSIM serving a certificate of the site CA is
// reached with those roots and refused without them; a redirect is never
// followed, so a notice goes only where the installer pointed it.
func TestClientTrustsSiteRoots(t *testing.T) {
	psim := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer psim.Close()
	roots := x509.NewCertPool()
	roots.AddCert(psim.Certificate())

	resp, err := Client(roots).Post(psim.URL+"/notice", "application/json", nil)
	if err != nil {
		t.Fatalf("with the site roots: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("with the site roots: HTTP %d", resp.StatusCode)
	}

	_, err = Client(nil).Post(psim.URL+"/notice", "application/json", nil)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("without the site roots: err %v, want an unknown-authority error", err)
	}

	resp, err = Client(roots).Post(psim.URL+"/moved", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("redirect: HTTP %d, want the 307 itself (not followed)", resp.StatusCode)
	}
}
