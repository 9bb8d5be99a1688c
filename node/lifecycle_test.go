package node

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// TestLifecycle: Close ends Run, is idempotent, and before Run releases
// what New took (the data_dir lock among them: a second New succeeds).
func TestLifecycle(t *testing.T) {
	testutil.CheckLifecycle(t, func(t *testing.T) testutil.Part {
		dir := t.TempDir()
		src := fmt.Sprintf("name = \"rec-a\"\ndata_dir = %q\n[listen]\nhttp = \"127.0.0.1:0\"\n", dir)
		cfg, err := config.Parse(filepath.Join(dir, "rec.toml"), src)
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(Options{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		return testutil.Part{Run: n.Run, Close: func() error {
			if err := n.Close(); err != nil {
				return err
			}
			again, err := New(Options{Config: cfg})
			if err != nil {
				return fmt.Errorf("New after Close: %w", err)
			}
			return again.Close()
		}}
	})
}
