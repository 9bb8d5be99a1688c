package backfill

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAutoMbps(t *testing.T) {
	for _, tc := range []struct {
		link Link
		want float64
		says string
	}{
		{Link{Interface: "lo", Loopback: true}, 0, "loopback"},
		{Link{Interface: "eth0", SpeedMbps: 1000}, 500, "eth0 at 1000 Mbit/s"},
		{Link{Interface: "eth1", SpeedMbps: 10000}, 5000, "eth1 at 10000 Mbit/s"},
		{Link{Interface: "ens3"}, UnknownLinkMbps, "ens3 reports no speed"},
		{Link{}, UnknownLinkMbps, "link not found"},
	} {
		if got := AutoMbps(tc.link); got != tc.want {
			t.Errorf("AutoMbps(%+v) = %g, want %g", tc.link, got, tc.want)
		}
		if got := tc.link.String(); got != tc.says {
			t.Errorf("%+v says %q, want %q", tc.link, got, tc.says)
		}
	}
}

func TestReadSpeed(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"eth0": "1000\n", "veth": "-1\n", "bad": "fast\n"} {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		os.WriteFile(filepath.Join(dir, name, "speed"), []byte(content), 0o644)
	}
	for ifc, want := range map[string]float64{"eth0": 1000, "veth": 0, "bad": 0, "missing": 0} {
		if got := readSpeed(dir, ifc); got != want {
			t.Errorf("readSpeed(%s) = %g, want %g", ifc, got, want)
		}
	}
}

// A peer on this machine is reached over loopback, whatever address of
// 127.0.0.0/8 it binds.
func TestLinkToLoopback(t *testing.T) {
	for _, host := range []string{"127.0.0.1:8080", "127.0.0.2", "localhost:1"} {
		l, err := LinkTo(host, "/sys/class/net")
		if err != nil {
			t.Fatalf("LinkTo(%s): %v", host, err)
		}
		if !l.Loopback || AutoMbps(l) != 0 {
			t.Errorf("LinkTo(%s) = %+v, want loopback (unlimited)", host, l)
		}
	}
}
