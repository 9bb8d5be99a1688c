package worker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// Set fills workers of PerWorker cameras, keeps a camera in its worker
// while it stays, reuses the room a removed camera leaves, and gives an
// isolated camera a worker of its own. (The workers themselves never
// start here: the binary is /bin/false; the process tests run real ones.)
func TestPoolGrouping(t *testing.T) {
	st, err := storage.Open(storage.Options{Dir: t.TempDir(), Server: "rec-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := NewPool(PoolOptions{Server: "rec-a", DataDir: t.TempDir(), Segment: time.Minute, Part: time.Second, Binary: "/bin/false", Dir: t.TempDir(), PerWorker: 2, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cams := func(ids ...int) []recorder.Camera {
		var out []recorder.Camera
		for _, i := range ids {
			out = append(out, recorder.Camera{ID: fmt.Sprintf("rec-a/cam%d", i), Home: "rec-a", URL: fmt.Sprintf("rtsp://127.0.0.1:1/cam%d", i)})
		}
		return out
	}
	groups := func() string {
		var gs []string
		for _, w := range p.Workers() {
			ids := slices.Clone(w.Cameras)
			for i := range ids {
				ids[i] = strings.TrimPrefix(ids[i], "rec-a/")
			}
			gs = append(gs, fmt.Sprintf("%d:%s", w.Slot, strings.Join(ids, "+")))
		}
		return strings.Join(gs, " ")
	}
	steps := []struct {
		name string
		set  []recorder.Camera
		want string
	}{
		{"fill", cams(1, 2, 3, 4, 5), "1:cam1+cam2 2:cam3+cam4 3:cam5"},
		{"again: nothing moves", cams(5, 4, 3, 2, 1), "1:cam1+cam2 2:cam3+cam4 3:cam5"},
		{"a camera leaves", cams(1, 2, 4, 5), "1:cam1+cam2 2:cam4 3:cam5"},
		{"its room is reused", cams(1, 2, 4, 5, 6), "1:cam1+cam2 2:cam4+cam6 3:cam5"},
		{"a worker empties", cams(4, 5, 6), "2:cam4+cam6 3:cam5"},
	}
	for _, s := range steps {
		p.Set(s.set)
		if got := groups(); got != s.want {
			t.Errorf("%s: groups %s, want %s", s.name, got, s.want)
		}
	}
	// cam7 is isolated (a crash loop split it out): alone, even with room
	p.mu.Lock()
	p.isolated["rec-a/cam7"] = true
	p.mu.Unlock()
	p.Set(cams(4, 5, 6, 7, 8))
	if got, want := groups(), "2:cam4+cam6 3:cam5+cam8 4:cam7"; got != want {
		t.Errorf("isolated camera: groups %s, want %s", got, want)
	}
	if st := p.Status(); len(st) != 5 || st[0].ID != "rec-a/cam4" || st[0].State != recorder.StateConnecting {
		t.Errorf("status while no worker runs: %+v", st)
	}
}
