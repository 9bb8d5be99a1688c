package live

import (
	"net"
	"testing"

	"github.com/buddyrec/buddyrec/internal/connlimit"
)

// TestListenerLimits: with WrapListener set to connection limits, idle
// connections beyond the per-address cap are closed, while a viewer within
// the cap still plays.
func TestListenerLimits(t *testing.T) {
	var wrapped *connlimit.Listener
	r := startRig(t, Options{
		WrapListener: func(ln net.Listener) net.Listener {
			wrapped = connlimit.Wrap(ln, connlimit.Options{Name: "rtsp", MaxPerHost: 2})
			return wrapped
		},
	})
	idle := dialViewer(t, r.live.Addr()) // holds one of the two slots
	_ = idle
	v := dialViewer(t, r.live.Addr())
	over := dialViewer(t, r.live.Addr())
	if code, _, _, err := over.request("OPTIONS", r.url()); err == nil {
		t.Errorf("third connection from one address answered %d, want it closed", code)
	}
	if code, err := v.play(r.url()); err != nil || code != 200 {
		t.Fatalf("viewer within the cap: %d %v", code, err)
	}
	if st := wrapped.Stats(); st.Refused[connlimit.ReasonHostFull] != 1 || st.Open != 2 {
		t.Errorf("stats %+v, want 2 open and 1 refused", st)
	}
}
