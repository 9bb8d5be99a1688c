package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buddyrec/buddyrec/config"
)

// TestDataDirInUse: a second server on the same data_dir is refused with a
// message naming the directory and the pid holding it, before it touches a
// bolt file; once the first is gone the directory is free again.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	cfgFor := func(name string) *config.Config {
		src := fmt.Sprintf("name = %q\ndata_dir = %q\n[recorder]\ncameras_per_worker = 0\n[listen]\nhttp = \"127.0.0.1:0\"\n", name, dir)
		cfg, err := config.Parse(filepath.Join(t.TempDir(), name+".toml"), src)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	first, err := New(Options{Config: cfgFor("rec-a")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: cfgFor("rec-b")})
	want := fmt.Sprintf("data_dir %s is in use by another buddyrec (pid %d)", dir, os.Getpid())
	if err == nil || err.Error() != want {
		t.Fatalf("second server on one data_dir: %v\nwant: %s", err, want)
	}
	if strings.Contains(err.Error(), "timeout") {
		t.Errorf("error still speaks of a bolt timeout: %v", err)
	}
	first.httpLn.Close()
	first.closeStores()
	again, err := New(Options{Config: cfgFor("rec-a")})
	if err != nil {
		t.Fatalf("data_dir not released when the first server closed: %v", err)
	}
	again.httpLn.Close()
	again.closeStores()
}
