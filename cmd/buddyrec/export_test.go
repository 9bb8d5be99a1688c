package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/export"
	"github.com/buddyrec/buddyrec/internal/testfootage"
	"github.com/buddyrec/buddyrec/storage"
	"github.com/buddyrec/buddyrec/web"
)

// TestExportCommand runs `buddyrec export` against a server guarded by an
// API token: the command reads the config's token_file, writes the MP4 and
// a manifest beside it whose digest is the file's, with the pieces and the
// gap the server reported.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(storage.Options{Dir: filepath.Join(dir, "data"), Server: "rec-a", Segment: 2 * time.Second, Part: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	testfootage.Write(t, "../..", st, "rec-a/lobby", start, 4*time.Second)
	testfootage.Write(t, "../..", st, "rec-a/lobby", start.Add(6*time.Second), 4*time.Second)

	tokenFile := filepath.Join(dir, "api.token")
	if err := os.WriteFile(tokenFile, []byte("an-api-token-of-enough-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := web.NewAuth(web.AuthOptions{TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: auth.Wrap(export.NewHandler(export.Options{Store: st, Self: "rec-a"}))}
	go srv.Serve(ln) //nolint:errcheck // closed below
	defer srv.Close()

	cfgPath := filepath.Join(dir, "rec-a.toml")
	cfg := fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[listen]\nhttp = %q\n[http]\ntoken_file = %q\n", filepath.Join(dir, "data2"), ln.Addr().String(), tokenFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "evidence.mp4")
	code, stdout, stderr := runCmd("export", "-config", cfgPath, "-camera", "rec-a/lobby",
		"-from", start.Format(time.RFC3339), "-to", start.Add(9*time.Second).Format(time.RFC3339), "-o", out)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s\n%s", code, stdout, stderr)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, "evidence.json"))
	if err != nil {
		t.Fatalf("no manifest beside the file: %v", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Bytes != int64(len(body)) || m.File != "evidence.mp4" || m.Camera != "rec-a/lobby" ||
		!m.From.Equal(start) || !m.To.Equal(start.Add(9*time.Second)) {
		t.Errorf("manifest %+v does not describe the file (sha256 %x, %d bytes)", m, sum, len(body))
	}
	if len(m.Pieces) < 2 || m.Pieces[0].Server != "rec-a" || m.Pieces[0].RecordedBy != "rec-a" {
		t.Errorf("manifest pieces = %+v, want rec-a's segments", m.Pieces)
	}
	if len(m.Gaps) != 1 || m.Gaps[0].Start.Sub(start.Add(4*time.Second)).Abs() > 100*time.Millisecond || !m.Gaps[0].End.Equal(start.Add(6*time.Second)) {
		t.Errorf("manifest gaps = %+v, want one from 4 s to 6 s", m.Gaps)
	}
	if !strings.Contains(stdout, m.SHA256) || strings.Contains(stdout+stderr, "an-api-token") {
		t.Errorf("output should name the digest and never the token:\n%s%s", stdout, stderr)
	}
	if _, err := os.Stat(out + ".part"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}

	// without the token the server refuses, and no file is written
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[listen]\nhttp = %q\n", filepath.Join(dir, "data2"), ln.Addr().String())), 0o600) //nolint:errcheck // checked by the run
	other := filepath.Join(dir, "refused.mp4")
	code, _, stderr = runCmd("export", "-config", cfgPath, "-camera", "rec-a/lobby", "-from", start.Format(time.RFC3339), "-to", start.Add(9*time.Second).Format(time.RFC3339), "-o", other)
	if code == 0 || !strings.Contains(stderr, "401") {
		t.Errorf("export without credentials: exit %d, %s; want a 401 error", code, stderr)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a refused export left a file: %v", err)
	}
}
