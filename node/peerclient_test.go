package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// testCA is a site CA made for one test; its files live in dir.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	dir    string
	File   string // the CA certificate, PEM
	serial int64
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: mustParse(t, der), key: key, dir: t.TempDir(), serial: 1}
	ca.File = ca.write(t, "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return ca
}

func (ca *testCA) write(t *testing.T, name string, b *pem.Block) string {
	t.Helper()
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue signs a server certificate for 127.0.0.1 and returns its cert and
// key files.
func (ca *testCA) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return ca.write(t, name+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ca.write(t, name+".key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func (ca *testCA) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
}

// TestPeerClient: the peer client trusts the system store plus ca_file, and
// keeps the export's properties (a bound on the first byte, none on the
// whole response).
func TestPeerClient(t *testing.T) {
	site := newTestCA(t, "site CA")
	other := newTestCA(t, "someone else's CA")
	certFile, keyFile := site.issue(t, "rec-b")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name    string
		caFile  string
		trusted bool
	}{
		{"site ca_file", site.File, true},
		{"no ca_file", "", false},
		{"another CA's file", other.File, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newPeerClient(tc.caFile)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.CloseIdleConnections)
			tr := c.Transport.(*http.Transport)
			if c.Timeout != 0 || tr.ResponseHeaderTimeout != peerResponseTimeout || tr.TLSHandshakeTimeout == 0 || tr.DialContext == nil {
				t.Errorf("client timeouts: overall %s, response header %s, handshake %s", c.Timeout, tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := c.Do(req)
			if tc.trusted {
				if err != nil {
					t.Fatalf("GET a peer signed by the site CA: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "hello" {
					t.Errorf("body %q", b)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("a peer signed by an untrusted CA was accepted")
			}
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) {
				t.Errorf("want x509.UnknownAuthorityError, got %v", err)
			}
		})
	}

	// A ca_file that went bad after `buddyrec check` stops New, naming it.
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newPeerClient(bad); err == nil || !strings.Contains(err.Error(), "http.ca_file: "+bad+": no PEM certificate found") {
		t.Errorf("bad ca_file: %v", err)
	}
}

// tlsPeer is one node of a two-server TLS site.
type tlsPeer struct {
	n    *Node
	base string // https://127.0.0.1:port
}

// startTLSPeer runs a node with gossip on loopback, serving HTTPS with a
// certificate of ca, trusting ca when withCA is set.
func startTLSPeer(t *testing.T, ca *testCA, name, join string, withCA bool, body string) (tlsPeer, string) {
	t.Helper()
	ports := make([]int, 2)
	for i := range ports {
		p, err := site.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	httpAddr, gossip := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	certFile, keyFile := ca.issue(t, name)
	trust := ""
	if withCA {
		trust = fmt.Sprintf("ca_file = %q\n", ca.File)
	}
	joinLine := ""
	if join != "" {
		joinLine = fmt.Sprintf("join = [%q]\n", join)
	}
	dir := t.TempDir()
	src := fmt.Sprintf("name = %q\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = %q\ngossip = %q\n[cluster]\ninsecure = true\n%s[http]\ncert_file = %q\nkey_file = %q\n%s%s",
		name, dir, httpAddr, gossip, joinLine, certFile, keyFile, trust, body)
	cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), src)
	if err != nil {
		t.Fatalf("config of %s: %v", name, err)
	}
	n, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatalf("New %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run %s: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20s", name)
		}
	})
	return tlsPeer{n: n, base: "https://" + httpAddr}, gossip
}

func (p tlsPeer) get(t *testing.T, c *http.Client, path string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(p.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	return resp.StatusCode, b
}

func (p tlsPeer) getJSON(t *testing.T, c *http.Client, path string, v any) {
	t.Helper()
	code, b := p.get(t, c, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestPeersOverTLS: two servers serving HTTPS with certificates of a site
// CA. With [http] ca_file they see each other: rec-a's status page lists
// rec-b's camera and rec-a exports footage only rec-b holds. Without it,
// the same fetches fail on the certificate, and the page says so, pointing
// at ca_file.
func TestPeersOverTLS(t *testing.T) {
	cams := testutil.Cameras(t, camsim.Options{Cameras: 1})

	for _, withCA := range []bool{true, false} {
		t.Run(fmt.Sprintf("ca_file=%v", withCA), func(t *testing.T) {
			ca := newTestCA(t, "site CA")
			c := ca.client()
			t.Cleanup(c.CloseIdleConnections)
			a, gossipA := startTLSPeer(t, ca, "rec-a", "", withCA, "")
			b, _ := startTLSPeer(t, ca, "rec-b", gossipA, withCA, fmt.Sprintf("[storage]\nsegment = \"1s\"\npart = \"250ms\"\n[[camera]]\nname = \"lobby\"\nurl = %q\n", cams.URL(1)))

			// Ready: rec-a sees rec-b alive, and rec-b records its camera
			// (asked directly, with a client that trusts the CA).
			waitFor(t, 15*time.Second, "rec-a sees rec-b alive and rec-b recording", func() bool {
				var cl api.Cluster
				a.getJSON(t, c, "/api/v1/cluster", &cl)
				alive := false
				for _, s := range cl.Servers {
					alive = alive || (s.Name == "rec-b" && s.State == "alive" && s.HTTP != "")
				}
				var cs api.Cameras
				b.getJSON(t, c, "/api/v1/cameras", &cs)
				return alive && len(cs.Cameras) == 1 && cs.Cameras[0].State == "recording"
			})

			code, page := a.get(t, c, "/")
			if code != http.StatusOK {
				t.Fatalf("rec-a page: HTTP %d", code)
			}
			// Without trust the camera is still listed, from rec-b's
			// inventory, but as unknown: nothing of it is shown as recorded.
			showsCam := bytes.Contains(page, []byte(`data-recorder="rec-b"`))
			if !bytes.Contains(page, []byte(`data-camera="rec-b/lobby"`)) {
				t.Error("rec-a's page does not list rec-b/lobby at all")
			}
			if !withCA && !bytes.Contains(page, []byte("planned on rec-b, which did not answer")) {
				t.Error("without ca_file, rec-b/lobby is not marked as planned on a server that did not answer")
			}
			unknown := bytes.Contains(page, []byte(`data-peer="rec-b"`))
			if withCA {
				if !showsCam || unknown {
					t.Errorf("with ca_file, rec-a's page should list rec-b/lobby (listed %v) and not mark rec-b unknown (marked %v)", showsCam, unknown)
				}
			} else {
				if showsCam || !unknown || !bytes.Contains(page, []byte("cameras unknown: certificate not trusted (set [http] ca_file to the site CA)")) {
					t.Errorf("without ca_file, rec-a's page should say rec-b's certificate is not trusted (marked %v) and not list its camera (listed %v)", unknown, showsCam)
				}
			}

			// Export of footage only rec-b holds, asked of rec-a.
			time.Sleep(2 * time.Second)
			now := time.Now()
			q := url.Values{"camera": {"rec-b/lobby"}, "from": {now.Add(-time.Minute).UTC().Format(time.RFC3339)}, "to": {now.UTC().Format(time.RFC3339)}}.Encode()
			var plan export.Plan
			a.getJSON(t, c, export.RoutePlan+"?"+q, &plan)
			if !withCA {
				if len(plan.Pieces) != 0 || len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "certificate signed by unknown authority") {
					t.Errorf("without ca_file, the plan should hold no piece and warn of rec-b's certificate: %+v", plan)
				}
				return
			}
			if len(plan.Pieces) == 0 || len(plan.Warnings) != 0 {
				t.Fatalf("with ca_file, rec-a plans no footage of rec-b: %+v", plan)
			}
			for _, p := range plan.Pieces {
				if p.Server != "rec-b" {
					t.Errorf("piece from %q, want rec-b: %+v", p.Server, p)
				}
			}
			code, mp4 := a.get(t, c, export.RouteExport+"?"+q)
			if code != http.StatusOK || len(mp4) < 8 || string(mp4[4:8]) != "ftyp" {
				t.Fatalf("export through rec-a: HTTP %d, %d bytes", code, len(mp4))
			}
			if bin, ok := testutil.LookTool(t, "ffprobe"); ok {
				f := filepath.Join(t.TempDir(), "export.mp4")
				if err := os.WriteFile(f, mp4, 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(bin, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", f).Output()
				if err != nil || !strings.Contains(string(out), "video") {
					t.Errorf("ffprobe of the export: %v, %q", err, out)
				}
			}
		})
	}
}
