package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfig writes src (and a valid gossip key and webhook secret beside
// it) into a temp dir and returns the config path.
func writeConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "gossip.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "psim.secret"), []byte("whsec_MDEyMzQ1Njc4OWFiY2RlZg==\n"), 0o600))
	p := filepath.Join(dir, "rec.toml")
	must(t, os.WriteFile(p, []byte(src), 0o600))
	return p
}

// minimalConfig is the smallest valid config; a table appended to it
// starts at line 5, so its first key is at line 6.
const minimalConfig = "name = \"rec-a\"\ndata_dir = \"/tmp/x\"\n[listen]\nhttp = \"127.0.0.1:8080\"\n"

// storageKeyCase is a [storage] table appended to minimalConfig and what
// it loads to: the value get reads, or an error naming line 6.
type storageKeyCase struct {
	storage string
	want    string
	err     string
}

// checkStorageKey loads each case and checks what get reads or the error.
func checkStorageKey(t *testing.T, cases []storageKeyCase, get func(*Config) string) {
	t.Helper()
	for _, tc := range cases {
		c, err := Load(writeConfig(t, minimalConfig+tc.storage))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), ":6") {
				t.Errorf("%q: error %v, want %q at line 6", tc.storage, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.storage, err)
		}
		if got := get(c); got != tc.want {
			t.Errorf("%q: loads as %q, want %q", tc.storage, got, tc.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const good = `name     = "rec-a"
data_dir = "/tmp/rec-a"

[listen]
gossip = "127.0.0.1:7946"
http   = "127.0.0.1:8080"
rtsp   = "127.0.0.1:8554"

[cluster]
join           = ["127.0.0.2:7946"]
key_file       = "gossip.key"
keepalive      = "200ms"
failover_after = "1s"
failback       = false
failback_after = "45s"

[capacity]
cameras      = 64
bitrate_mbps = 400

[failover]
buddies = ["rec-b", "rec-c"]
cameras = "critical"

[storage]
segment   = "30s"
part      = "500ms"
retention = "30d"
min_free  = "20GB"

[[camera]]
name     = "lobby"
url      = "rtsp://admin:hunter2@10.0.1.21/stream1"
critical = true

[[camera]]
name      = "dock"
url       = "rtsp://10.0.1.22/stream1"
transport = "udp"

[[psim]]
url         = "https://psim.example/hooks/vms"
secret_file = "psim.secret"
events      = ["failover.*"]

[[aspect]]
kind = "io"
name = "door-io-1"
address = "10.0.2.5"
password = "relaypass"
`

func TestLoadGood(t *testing.T) {
	c, err := Load(writeConfig(t, good))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Name != "rec-a" || c.Listen.RTSP != "127.0.0.1:8554" || len(c.Cluster.Join) != 1 {
		t.Errorf("basic fields wrong: %+v", c)
	}
	if c.Cluster.Keepalive != 200*time.Millisecond || c.Cluster.FailoverAfter != time.Second || c.Cluster.Failback || c.Cluster.FailbackAfter != 45*time.Second {
		t.Errorf("cluster wrong: %+v", c.Cluster)
	}
	if len(c.GossipKey) != 16 {
		t.Errorf("gossip key not decoded: %d bytes", len(c.GossipKey))
	}
	if c.Storage.Segment != 30*time.Second || c.Storage.Part != 500*time.Millisecond || c.Storage.Retention != 30*24*time.Hour || c.Storage.MinFreeBytes != 20e9 {
		t.Errorf("storage wrong: %+v", c.Storage)
	}
	if len(c.Cameras) != 2 || !c.Cameras[0].Critical || c.Cameras[1].Transport != "udp" || c.Cameras[0].Transport != "tcp" {
		t.Errorf("cameras wrong: %+v", c.Cameras)
	}
	if c.Cameras[1].Line != 36 {
		t.Errorf("camera[2] line = %d, want 36", c.Cameras[1].Line)
	}
	if c.Failover.Cameras != "critical" || c.Failover.Buddies[1] != "rec-c" {
		t.Errorf("failover wrong: %+v", c.Failover)
	}
	if len(c.PSIM) != 1 || !strings.HasPrefix(c.PSIM[0].Secret, "whsec_") {
		t.Errorf("psim wrong")
	}
	if c.Aspects[0].Params["address"] != "10.0.2.5" {
		t.Errorf("aspect params wrong: %+v", c.Aspects[0])
	}
	sum := c.Summary()
	for _, secret := range []string{"hunter2", "relaypass", "MDEyMzQ1Njc4OWFiY2RlZg"} {
		if strings.Contains(sum, secret) {
			t.Errorf("summary leaks secret %q:\n%s", secret, sum)
		}
	}
	if !strings.Contains(sum, "rec-a/lobby") || !strings.Contains(sum, "admin:xxxxx@10.0.1.21") {
		t.Errorf("summary misses the camera:\n%s", sum)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("min.toml", "name = \"solo\"\ndata_dir = \"/d\"\n[[camera]]\nname = \"c1\"\nurl = \"rtsp://127.0.0.1:8554/cam1\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.HTTP != DefaultHTTP || c.Storage.Segment != DefaultSegment || c.Storage.Part != DefaultPart ||
		c.Cluster.Keepalive != DefaultKeepalive || !c.Cluster.Failback || c.Storage.MinFreeFraction != 0.05 ||
		c.Failover.Cameras != "all" || c.Capacity.Viewers != DefaultViewers || c.Events.Retention != DefaultEventsKeep {
		t.Errorf("defaults wrong: %+v", c)
	}
}

// TestProblems checks that each kind of bad input is reported, all at once,
// with the line it is on.
func TestProblems(t *testing.T) {
	src := `name = "rec a"
data_dir = "/d"
segmnt = "60s"
[listen]
http = "nonsense"
gossip = "127.0.0.1:7946"
[cluster]
keepalive = 5
failover_after = "3 seconds"
failback = "yes"
[capacity]
cameras = "many"
[failover]
buddies = ["rec a", "rec-b", "rec-b"]
cameras = "some"
[storage]
part = "90s"
min_free = "lots"
[[camera]]
name = "lobby"
url = "rtsp://admin:hunter2@10.0.1.21/stream1"
bogus = 1
[[camera]]
name = "lobby"
url = "http://admin:hunter2@10.0.1.21/x"
transport = "sctp"
[[camera]]
url = "rtsp://10.0.0.1/"
[[psim]]
url = "ftp://x"
secret_file = "missing.secret"
[[aspect]]
kind = "teleporter"
name = "t1"
`
	_, err := Load(writeConfig(t, src))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []struct {
		line int
		frag string
	}{
		{1, "name: \"rec a\" is not a valid server name"},
		{3, "segmnt: unknown key"},
		{5, "listen.http: \"nonsense\" is not host:port"},
		{7, "cluster.key_file: is required when listen.gossip is set"},
		{8, "cluster.keepalive: must be a duration string"},
		{9, "cluster.failover_after: bad duration \"3 seconds\""},
		{10, "cluster.failback: must be true or false"},
		{12, "capacity.cameras: must be a whole number"},
		{14, "failover.buddies: names this server itself"},
		{14, "failover.buddies: names \"rec-b\" twice"},
		{15, "failover.cameras: must be \"all\" or \"critical\""},
		{17, "storage.part: must be between 100ms and the segment length"},
		{18, "storage.min_free: bad size \"lots\""},
		{22, "camera[1].bogus: unknown key"},
		{24, "camera[2].name: duplicate camera name \"lobby\" (first defined at line 20)"},
		{25, "camera[2].url: http://admin:xxxxx@10.0.1.21/x must start with rtsp:// or rtsps://"},
		{26, "camera[2].transport: must be \"tcp\", \"udp\" or \"auto\""},
		{27, "camera[3].name: is required"},
		{30, "psim[1].url: is required"},
		{31, "psim[1].secret_file: cannot read"},
		{33, "aspect[1].kind: must be one of io, lpr, analytics, map, middleware"},
	}
	for _, w := range want {
		found := false
		for _, p := range ps {
			if p.Line == w.line && strings.Contains(p.String(), w.frag) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing problem at line %d containing %q", w.line, w.frag)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("problems leak a password:\n%v", err)
	}
	if !strings.Contains(err.Error(), "rec.toml:5: listen.http") {
		t.Errorf("problems lack file:line prefix:\n%v", err)
	}
	if t.Failed() {
		t.Logf("all problems:\n%v", err)
	}
}

func TestOpenListenersNeedUsers(t *testing.T) {
	_, err := Parse("o.toml", "name = \"a\"\ndata_dir = \"/d\"\n[listen]\nhttp = \"10.0.0.5:8080\"\nrtsp = \"0.0.0.0:8554\"\n")
	if err == nil || !strings.Contains(err.Error(), "o.toml:4: listen.http: 10.0.0.5:8080 is reachable from the network") ||
		!strings.Contains(err.Error(), "o.toml:5: listen.rtsp: 0.0.0.0:8554 is reachable from the network") {
		t.Errorf("open listeners: %v", err)
	}
	if _, err := Parse("o.toml", "name = \"a\"\ndata_dir = \"/d\"\n[listen]\nhttp = \"localhost:8080\"\nrtsp = \"127.0.0.1:8554\"\n"); err != nil {
		t.Errorf("loopback listeners refused: %v", err)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("x.toml", "name = \"a\"\ndata_dir = \"/d\"\n[listen]\nhttp = = \"1\"\n")
	var ps Problems
	if !errors.As(err, &ps) || ps[0].Line != 4 || !strings.Contains(ps[0].String(), "x.toml:4: syntax error") {
		t.Fatalf("got %v", err)
	}
}

func TestUnreadableFiles(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "nope.toml: cannot read config: no such file or directory") {
		t.Errorf("missing config: %v", err)
	}
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "short.key"), []byte("c2VjcmV0\n"), 0o600))
	p := filepath.Join(dir, "r.toml")
	must(t, os.WriteFile(p, []byte("name = \"a\"\ndata_dir = \"/d\"\n[listen]\ngossip = \"127.0.0.1:1\"\n[cluster]\nkey_file = \"short.key\"\n"), 0o600))
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), "r.toml:6: cluster.key_file:") || !strings.Contains(err.Error(), "6-byte key") {
		t.Errorf("short key: %v", err)
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("key content leaked: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"250ms", 250 * time.Millisecond, true},
		{"3s", 3 * time.Second, true},
		{"5", 0, false},
		{"", 0, false},
		{"-3s", 0, false},
		{"3 days", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestParseMinFree(t *testing.T) {
	for _, tc := range []struct {
		in    string
		frac  float64
		bytes int64
		ok    bool
	}{
		{"5%", 0.05, 0, true},
		{"20GB", 0, 20e9, true},
		{"512MiB", 0, 512 << 20, true},
		{"100%", 0, 0, false},
		{"lots", 0, 0, false},
	} {
		f, b, err := ParseMinFree(tc.in)
		if (err == nil) != tc.ok || f != tc.frac || b != tc.bytes {
			t.Errorf("ParseMinFree(%q) = %v, %v, %v", tc.in, f, b, err)
		}
	}
}
