package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults applied when a key is absent.
const (
	DefaultHTTP          = "127.0.0.1:8080"
	DefaultKeepalive     = 200 * time.Millisecond
	DefaultFailoverAfter = 800 * time.Millisecond
	DefaultForgetAfter   = 30 * 24 * time.Hour
	DefaultDrainTimeout  = 15 * time.Second
	DefaultFailbackAfter = 30 * time.Second
	DefaultSegment       = 60 * time.Second
	DefaultPart          = time.Second
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultMinFree       = 0.05
	DefaultEventsKeep    = 10 * 24 * time.Hour
	DefaultViewers       = 16
	DefaultCameraMbps    = 4.0
)

// AspectKinds are the aspect kinds a config may name.
var aspectKinds = []string{"io", "lpr", "analytics", "map", "middleware"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Load reads, parses and validates the config at path. On any problem it
// returns a nil Config and a Problems error listing all of them.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Msg: fmt.Sprintf("cannot read config: %v", unwrapPathError(err))}}
	}
	return Parse(path, string(src))
}

// Parse validates config source; path is used in messages and to resolve
// relative file names (key_file, secret_file) against the config's folder.
func Parse(path, src string) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Problems{{File: path, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message}}
		}
		return nil, Problems{{File: path, Msg: "syntax error: " + err.Error()}}
	}
	d := &decoder{file: path, lines: indexLines(src), dir: dirOf(path)}
	c := d.decode(raw)
	if len(d.problems) > 0 {
		return nil, d.problems.sorted()
	}
	return c, nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return ""
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

type decoder struct {
	file     string
	dir      string
	lines    lineIndex
	problems Problems
}

// display turns an internal path ("camera.2.url") into what an installer
// reads ("camera[3].url").
func display(path string) string {
	parts := strings.Split(path, ".")
	var b strings.Builder
	for i, p := range parts {
		if n, err := strconv.Atoi(p); err == nil && i > 0 {
			fmt.Fprintf(&b, "[%d]", n+1)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func (d *decoder) errorf(path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: d.lines.lookup(path), Key: display(path), Msg: fmt.Sprintf(format, args...)})
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// table returns raw[key] as a table, reporting a type problem.
func (d *decoder) table(raw map[string]any, prefix, key string) map[string]any {
	v, ok := raw[key]
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.errorf(join(prefix, key), "must be a table, not %s", typeName(v))
		return nil
	}
	return m
}

// tables returns raw[key] as an array of tables.
func (d *decoder) tables(raw map[string]any, key string) []map[string]any {
	v, ok := raw[key]
	if !ok {
		return nil
	}
	switch t := v.(type) {
	case []map[string]any:
		return t
	case []any:
		out := make([]map[string]any, 0, len(t))
		for i, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				d.errorf(fmt.Sprintf("%s.%d", key, i), "must be a table")
				continue
			}
			out = append(out, m)
		}
		return out
	}
	d.errorf(key, "must be an array of tables ([[%s]]), not %s", key, typeName(v))
	return nil
}

// unknown reports keys of m not in known.
func (d *decoder) unknown(m map[string]any, prefix string, known ...string) {
	for k := range m {
		found := false
		for _, kk := range known {
			if k == kk {
				found = true
				break
			}
		}
		if !found {
			d.errorf(join(prefix, k), "unknown key")
		}
	}
}

func (d *decoder) str(m map[string]any, prefix, key, def string) string {
	v, ok := m[key]
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		d.errorf(join(prefix, key), "must be a string, not %s", typeName(v))
		return def
	}
	return s
}

func (d *decoder) boolean(m map[string]any, prefix, key string, def bool) bool {
	v, ok := m[key]
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		d.errorf(join(prefix, key), "must be true or false, not %s", typeName(v))
		return def
	}
	return b
}

func (d *decoder) integer(m map[string]any, prefix, key string, def int) int {
	v, ok := m[key]
	if !ok {
		return def
	}
	n, ok := v.(int64)
	if !ok {
		d.errorf(join(prefix, key), "must be a whole number, not %s", typeName(v))
		return def
	}
	if n < 0 || n > math.MaxInt32 {
		d.errorf(join(prefix, key), "must be between 0 and %d", math.MaxInt32)
		return def
	}
	return int(n)
}

func (d *decoder) number(m map[string]any, prefix, key string, def float64) float64 {
	v, ok := m[key]
	if !ok {
		return def
	}
	var f float64
	switch t := v.(type) {
	case int64:
		f = float64(t)
	case float64:
		f = t
	default:
		d.errorf(join(prefix, key), "must be a number, not %s", typeName(v))
		return def
	}
	if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorf(join(prefix, key), "must be a non-negative number")
		return def
	}
	return f
}

func (d *decoder) strings(m map[string]any, prefix, key string) []string {
	v, ok := m[key]
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		d.errorf(join(prefix, key), "must be an array of strings, not %s", typeName(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.errorf(join(prefix, key), "must be an array of strings; found %s", typeName(e))
			continue
		}
		out = append(out, s)
	}
	return out
}

// duration parses a duration string. A bare number is rejected: toml would
// read it as nanoseconds, which is never what an installer meant.
func (d *decoder) duration(m map[string]any, prefix, key string, def time.Duration) time.Duration {
	v, ok := m[key]
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		d.errorf(join(prefix, key), "must be a duration string with a unit such as \"500ms\", \"3s\", \"30d\", not %s", typeName(v))
		return def
	}
	dur, err := ParseDuration(s)
	if err != nil {
		d.errorf(join(prefix, key), "%v", err)
		return def
	}
	return dur
}

// ParseDuration accepts Go durations plus a "d" (24 h) unit, e.g. "30d",
// "1d12h", "250ms".
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	if i := strings.IndexByte(t, 'd'); i > 0 {
		days, err := strconv.ParseFloat(t[:i], 64)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("bad duration %q: want e.g. \"30d\", \"12h\", \"3s\"", s)
		}
		total = time.Duration(days * float64(24*time.Hour))
		t = t[i+1:]
		if t == "" {
			return total, nil
		}
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fmt.Errorf("bad duration %q: a unit is required (ms, s, m, h, d)", s)
	}
	dur, err := time.ParseDuration(t)
	if err != nil || dur < 0 {
		return 0, fmt.Errorf("bad duration %q: want e.g. \"30d\", \"12h\", \"3s\", \"500ms\"", s)
	}
	return total + dur, nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "a number"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any, []map[string]any:
		return "a table"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

func (d *decoder) decode(raw map[string]any) *Config {
	c := &Config{File: d.file}
	d.unknown(raw, "", keys[""]...)

	c.Name = d.str(raw, "", "name", "")
	switch {
	case c.Name == "":
		d.errorf("name", "is required: a name unique in the site, e.g. name = \"rec-a\"")
	case !nameRE.MatchString(c.Name):
		d.errorf("name", "%q is not a valid server name: use letters, digits, '-', '_' or '.', at most 63", c.Name)
	}
	c.DataDir = d.str(raw, "", "data_dir", "")
	if c.DataDir == "" {
		d.errorf("data_dir", "is required: the folder for recordings and state, e.g. data_dir = \"/var/lib/buddyrec\"")
	}

	d.decodeListen(c, d.table(raw, "", "listen"))
	d.decodeCluster(c, d.table(raw, "", "cluster"))
	d.decodeCapacity(c, d.table(raw, "", "capacity"))
	d.decodeFailover(c, d.table(raw, "", "failover"))
	d.decodeStorage(c, d.table(raw, "", "storage"))
	d.decodeRecorder(c, d.table(raw, "", "recorder"))
	ev := d.table(raw, "", "events")
	d.unknown(ev, "events", keys["events"]...)
	c.Events.Retention = d.duration(ev, "events", "retention", DefaultEventsKeep)
	h := d.table(raw, "", "http")
	d.unknown(h, "http", keys["http"]...)
	c.HTTP = HTTP{
		UsersFile: d.path(d.str(h, "http", "users_file", "")),
		TokenFile: d.path(d.str(h, "http", "token_file", "")),
		CertFile:  d.path(d.str(h, "http", "cert_file", "")),
		KeyFile:   d.path(d.str(h, "http", "key_file", "")),
		CAFile:    d.path(d.str(h, "http", "ca_file", "")),
	}
	if (c.HTTP.CertFile == "") != (c.HTTP.KeyFile == "") {
		d.errorf("http", "cert_file and key_file must be set together")
	}
	if c.HTTP.UsersFile == "" && c.HTTP.TokenFile == "" && !isLoopback(c.Listen.HTTP) {
		d.errorf("listen.http", "%s is reachable from the network, but [http] has no users_file or token_file: anyone could watch the site; add users (`buddyrec passwd`) or listen on 127.0.0.1", c.Listen.HTTP)
	}
	if c.Listen.RTSP != "" && c.HTTP.UsersFile == "" && !isLoopback(c.Listen.RTSP) {
		d.errorf("listen.rtsp", "%s is reachable from the network, but [http] has no users_file: anyone could watch live video; add users (`buddyrec passwd`) or listen on 127.0.0.1", c.Listen.RTSP)
	}
	for _, f := range []struct{ key, path string }{{"users_file", c.HTTP.UsersFile}, {"token_file", c.HTTP.TokenFile}, {"cert_file", c.HTTP.CertFile}, {"key_file", c.HTTP.KeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				d.errorf("http."+f.key, "cannot read %s: %v", f.path, unwrapPathError(err))
			}
		}
	}
	if c.HTTP.CAFile != "" {
		if _, err := ReadCAFile(c.HTTP.CAFile); err != nil {
			d.errorf("http.ca_file", "%v", err)
		}
	}
	d.decodeCameras(c, d.tables(raw, "camera"))
	d.decodePSIM(c, d.tables(raw, "psim"))
	d.decodeAspects(c, d.tables(raw, "aspect"))
	return c
}

// path resolves a file name relative to the config file's folder.
func (d *decoder) path(p string) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	return d.dir + p
}

func (d *decoder) hostPort(path, v string, required bool) {
	if v == "" {
		if required {
			d.errorf(path, "is required (host:port)")
		}
		return
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		d.errorf(path, "%q is not host:port", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.errorf(path, "%q has a bad port", v)
	}
	_ = host
}

func (d *decoder) decodeListen(c *Config, m map[string]any) {
	d.unknown(m, "listen", keys["listen"]...)
	c.Listen.Gossip = d.str(m, "listen", "gossip", "")
	c.Listen.HTTP = d.str(m, "listen", "http", DefaultHTTP)
	c.Listen.RTSP = d.str(m, "listen", "rtsp", "")
	d.hostPort("listen.gossip", c.Listen.Gossip, false)
	d.hostPort("listen.http", c.Listen.HTTP, true)
	d.hostPort("listen.rtsp", c.Listen.RTSP, false)
}

func (d *decoder) decodeCluster(c *Config, m map[string]any) {
	const p = "cluster"
	d.unknown(m, p, keys[p]...)
	c.Cluster = Cluster{
		Join:          d.strings(m, p, "join"),
		KeyFile:       d.path(d.str(m, p, "key_file", "")),
		Keepalive:     d.duration(m, p, "keepalive", DefaultKeepalive),
		FailoverAfter: d.duration(m, p, "failover_after", DefaultFailoverAfter),
		Failback:      d.boolean(m, p, "failback", true),
		FailbackAfter: d.duration(m, p, "failback_after", DefaultFailbackAfter),
		Insecure:      d.boolean(m, p, "insecure", false),
		ForgetAfter:   d.duration(m, p, "forget_after", DefaultForgetAfter),
		DrainTimeout:  d.duration(m, p, "drain_timeout", DefaultDrainTimeout),
	}
	if c.Cluster.DrainTimeout < 0 || c.Cluster.DrainTimeout > 10*time.Minute {
		d.errorf("cluster.drain_timeout", "must be between 0s (stop at once) and 10m")
	}
	if c.Cluster.ForgetAfter < time.Hour {
		d.errorf("cluster.forget_after", "must be at least 1h: it is the longest outage buddies cover, after which a gone server's cameras are no longer adopted")
	}
	for _, j := range c.Cluster.Join {
		d.hostPort("cluster.join", j, true)
	}
	if c.Cluster.Keepalive < 50*time.Millisecond || c.Cluster.Keepalive > time.Minute {
		d.errorf("cluster.keepalive", "must be between 50ms and 1m")
	}
	if c.Cluster.FailoverAfter < 3*c.Cluster.Keepalive {
		d.errorf("cluster.failover_after", "must be at least three times keepalive (%s): a peer is probed at least twice before it is declared dead", c.Cluster.Keepalive)
	}
	if len(c.Cluster.Join) > 0 && c.Listen.Gossip == "" {
		d.errorf("cluster.join", "needs listen.gossip: a server joins a cluster through its own gossip address")
	}
	if c.Cluster.KeyFile != "" {
		key, err := ReadGossipKey(c.Cluster.KeyFile)
		if err != nil {
			d.errorf("cluster.key_file", "%v", err)
		}
		c.GossipKey = key
	} else if c.Listen.Gossip != "" && !c.Cluster.Insecure {
		d.errorf("cluster.key_file", "is required when listen.gossip is set: gossip carries camera credentials (generate one with `buddyrec keygen`), or set insecure = true for a lab")
	}
}

// ReadGossipKey reads a base64 AES key of 16, 24 or 32 bytes. Its errors
// never include the file's content.
func ReadGossipKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPathError(err))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64 (generate one with `buddyrec keygen`)", path)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("%s holds a %d-byte key; it must be 16, 24 or 32 bytes", path, len(key))
}

// ReadCAFile reads the PEM certificates of a [http] ca_file. It fails
// unless the file holds at least one CERTIFICATE block and every such block
// parses, so a wrong file (a key, a DER file, a typo) is caught by `buddyrec
// check` rather than as peers that cannot be reached. Other PEM blocks are
// ignored; errors name the file, never its content.
func ReadCAFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPathError(err))
	}
	var certs []*x509.Certificate
	for n := 1; ; {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d does not parse: %v", path, n, err)
		}
		certs = append(certs, cert)
		n++
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found (want one or more -----BEGIN CERTIFICATE----- blocks)", path)
	}
	return certs, nil
}

// SiteRoots is the certificate pool a server checks HTTPS servers against
// (its peers and the PSIM): the system store plus the certificates of
// caFile. It is nil, meaning the system store alone, when caFile is empty.
func SiteRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	certs, err := ReadCAFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("http.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		// No system store (a minimal image): the site CA alone.
		pool = x509.NewCertPool()
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func (d *decoder) decodeCapacity(c *Config, m map[string]any) {
	const p = "capacity"
	d.unknown(m, p, keys[p]...)
	c.Capacity = Capacity{
		Cameras:     d.integer(m, p, "cameras", 0),
		BitrateMbps: d.number(m, p, "bitrate_mbps", 0),
		Viewers:     d.integer(m, p, "viewers", DefaultViewers),
	}
}

func (d *decoder) decodeFailover(c *Config, m map[string]any) {
	const p = "failover"
	d.unknown(m, p, keys[p]...)
	c.Failover.Buddies = d.strings(m, p, "buddies")
	c.Failover.Cameras = d.str(m, p, "cameras", "all")
	if c.Failover.Cameras != "all" && c.Failover.Cameras != "critical" {
		d.errorf("failover.cameras", "must be \"all\" or \"critical\", not %q", c.Failover.Cameras)
	}
	c.Failover.Standby = d.str(m, p, "standby", StandbyCold)
	switch c.Failover.Standby {
	case StandbyCold, StandbyHot, StandbyMirror:
	default:
		d.errorf("failover.standby", "must be \"cold\", \"hot\" or \"mirror\", not %q", c.Failover.Standby)
	}
	seen := map[string]bool{}
	for _, b := range c.Failover.Buddies {
		switch {
		case b == c.Name:
			d.errorf("failover.buddies", "names this server itself (%q)", b)
		case seen[b]:
			d.errorf("failover.buddies", "names %q twice", b)
		case !nameRE.MatchString(b):
			d.errorf("failover.buddies", "%q is not a valid server name", b)
		}
		seen[b] = true
	}
	if len(c.Failover.Buddies) > 0 && c.Listen.Gossip == "" {
		d.errorf("failover.buddies", "needs listen.gossip: buddies are found through gossip")
	}
}

func (d *decoder) decodeStorage(c *Config, m map[string]any) {
	const p = "storage"
	d.unknown(m, p, keys[p]...)
	c.Storage.Segment = d.duration(m, p, "segment", DefaultSegment)
	c.Storage.Part = d.duration(m, p, "part", DefaultPart)
	c.Storage.Retention = d.duration(m, p, "retention", DefaultRetention)
	if c.Storage.Segment < time.Second || c.Storage.Segment > 2*time.Hour {
		d.errorf("storage.segment", "must be between 1s and 2h")
	}
	if c.Storage.Part < 100*time.Millisecond || c.Storage.Part > c.Storage.Segment {
		d.errorf("storage.part", "must be between 100ms and the segment length")
	}
	c.Storage.BackfillAuto = true // the default: see Storage.BackfillAuto
	if v, ok := m["backfill_mbps"]; ok {
		if s, isString := v.(string); isString {
			if s != "auto" {
				d.errorf("storage.backfill_mbps", "must be a number of Mbit/s or \"auto\", not the string %q", s)
			}
		} else {
			c.Storage.BackfillAuto = false
			c.Storage.BackfillMbps = d.number(m, p, "backfill_mbps", 0)
		}
	}
	c.Storage.SyncMethod = d.str(m, p, "sync_method", "auto")
	switch c.Storage.SyncMethod {
	case "auto", "io_uring", "fdatasync":
	default:
		d.errorf("storage.sync_method", "must be \"auto\", \"io_uring\" or \"fdatasync\", not %q", c.Storage.SyncMethod)
	}
	c.Storage.MinFreeFraction = DefaultMinFree
	if v, ok := m["min_free"]; ok {
		s, ok := v.(string)
		if !ok {
			d.errorf("storage.min_free", "must be a string such as \"5%%\" or \"20GB\", not %s", typeName(v))
			return
		}
		frac, bytes, err := ParseMinFree(s)
		if err != nil {
			d.errorf("storage.min_free", "%v", err)
			return
		}
		c.Storage.MinFreeFraction, c.Storage.MinFreeBytes = frac, bytes
	}
}

// DefaultCamerasPerWorker is [recorder] cameras_per_worker when unset:
// isolation on, 25 cameras per worker process. Measured by `bench record`
// (README, Benchmarks): a crash costs at most 25 cameras, memory stays
// within 1.5 MB per camera over all processes, and larger groups save
// little more CPU; one camera per process costs a Go runtime per camera.
const DefaultCamerasPerWorker = 25

func (d *decoder) decodeRecorder(c *Config, m map[string]any) {
	const p = "recorder"
	d.unknown(m, p, keys[p]...)
	c.Recorder.CamerasPerWorker = d.integer(m, p, "cameras_per_worker", DefaultCamerasPerWorker)
	if n := c.Recorder.CamerasPerWorker; n < 0 || n > 1000 {
		d.errorf("recorder.cameras_per_worker", "must be between 0 (record in the server process) and 1000, not %d", n)
	}
	if v, ok := m["worker_memory"]; ok {
		s, ok := v.(string)
		var bytes int64
		var err error
		if ok {
			var frac float64
			frac, bytes, err = ParseMinFree(s)
			if err == nil && (frac != 0 || bytes < 16<<20) {
				err = fmt.Errorf("want a size of at least 16MiB such as \"512MiB\", not %q", s)
			}
		} else {
			err = fmt.Errorf("must be a string such as \"512MiB\", not %s", typeName(v))
		}
		if err != nil {
			d.errorf("recorder.worker_memory", "%v", err)
			return
		}
		c.Recorder.WorkerMemory = bytes
	}
}

// ParseMinFree reads "5%" (a fraction of the disk) or "20GB"/"500MB"/"1TB"
// (bytes, powers of 1000; GiB/MiB/TiB for powers of 1024).
func ParseMinFree(s string) (fraction float64, bytes int64, err error) {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "%") {
		f, err := strconv.ParseFloat(strings.TrimSpace(t[:len(t)-1]), 64)
		if err != nil || f < 0 || f >= 100 {
			return 0, 0, fmt.Errorf("bad percentage %q: want e.g. \"5%%\"", s)
		}
		return f / 100, 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}}
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), 64)
			if err != nil || f < 0 {
				break
			}
			return 0, int64(f * u.mult), nil
		}
	}
	return 0, 0, fmt.Errorf("bad size %q: want a percentage (\"5%%\") or a size (\"20GB\", \"500MiB\")", s)
}

func (d *decoder) decodeCameras(c *Config, tables []map[string]any) {
	seen := map[string]int{}
	for i, m := range tables {
		p := fmt.Sprintf("camera.%d", i)
		d.unknown(m, p, keys["camera"]...)
		cam := Camera{
			Name:        d.str(m, p, "name", ""),
			URL:         d.str(m, p, "url", ""),
			Critical:    d.boolean(m, p, "critical", false),
			Transport:   d.str(m, p, "transport", "tcp"),
			BitrateMbps: d.number(m, p, "bitrate_mbps", DefaultCameraMbps),
			Line:        d.lines.lookup(p),
		}
		switch {
		case cam.Name == "":
			d.errorf(p+".name", "is required")
		case !nameRE.MatchString(cam.Name):
			d.errorf(p+".name", "%q is not a valid camera name: use letters, digits, '-', '_' or '.'", cam.Name)
		default:
			if first, dup := seen[cam.Name]; dup {
				d.errorf(p+".name", "duplicate camera name %q (first defined at line %d)", cam.Name, first)
			} else {
				seen[cam.Name] = d.lines.lookup(p + ".name")
			}
		}
		if cam.URL == "" {
			d.errorf(p+".url", "is required, e.g. url = \"rtsp://10.0.1.21/stream1\" with user = \"admin\" and password_file = \"lobby.pass\"")
		} else {
			d.cameraURLProblem(p, cam.URL)
		}
		d.decodeCameraCredentials(m, p, &cam)
		switch cam.Transport {
		case "tcp", "udp", "auto":
		default:
			d.errorf(p+".transport", "must be \"tcp\", \"udp\" or \"auto\", not %q", cam.Transport)
		}
		c.Cameras = append(c.Cameras, cam)
	}
	if c.Capacity.Cameras > 0 && len(c.Cameras) > c.Capacity.Cameras {
		d.errorf("capacity.cameras", "is %d but this server owns %d cameras", c.Capacity.Cameras, len(c.Cameras))
	}
}

func (d *decoder) decodePSIM(c *Config, tables []map[string]any) {
	for i, m := range tables {
		p := fmt.Sprintf("psim.%d", i)
		d.unknown(m, p, keys["psim"]...)
		ps := PSIM{
			URL:        d.str(m, p, "url", ""),
			SecretFile: d.path(d.str(m, p, "secret_file", "")),
			Events:     d.strings(m, p, "events"),
			Line:       d.lines.lookup(p),
		}
		if u, err := url.Parse(ps.URL); ps.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.errorf(p+".url", "is required: an http:// or https:// URL")
		}
		if ps.SecretFile == "" {
			d.errorf(p+".secret_file", "is required: a file holding a whsec_<base64> signing secret")
		} else if b, err := os.ReadFile(ps.SecretFile); err != nil {
			d.errorf(p+".secret_file", "cannot read %s: %v", ps.SecretFile, unwrapPathError(err))
		} else {
			ps.Secret = strings.TrimSpace(string(b))
			if !validWebhookSecret(ps.Secret) {
				d.errorf(p+".secret_file", "%s must hold whsec_ followed by base64 (generate one with `buddyrec keygen -webhook`)", ps.SecretFile)
			}
		}
		c.PSIM = append(c.PSIM, ps)
	}
}

func validWebhookSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	return err == nil && len(b) >= 16
}

func (d *decoder) decodeAspects(c *Config, tables []map[string]any) {
	seen := map[string]bool{}
	for i, m := range tables {
		p := fmt.Sprintf("aspect.%d", i)
		a := Aspect{Kind: d.str(m, p, "kind", ""), Name: d.str(m, p, "name", ""), Params: map[string]string{}, Line: d.lines.lookup(p)}
		ok := false
		for _, k := range aspectKinds {
			ok = ok || a.Kind == k
		}
		if !ok {
			d.errorf(p+".kind", "must be one of %s, not %q", strings.Join(aspectKinds, ", "), a.Kind)
		}
		if a.Name == "" {
			d.errorf(p+".name", "is required")
		} else if seen[a.Kind+"/"+a.Name] {
			d.errorf(p+".name", "duplicate %s aspect %q", a.Kind, a.Name)
		}
		seen[a.Kind+"/"+a.Name] = true
		for k, v := range m {
			if k == "kind" || k == "name" {
				continue
			}
			switch t := v.(type) {
			case string:
				a.Params[k] = t
			case int64, float64, bool:
				a.Params[k] = fmt.Sprint(t)
			default:
				d.errorf(join(p, k), "aspect keys must be strings, numbers or booleans, not %s", typeName(v))
			}
		}
		c.Aspects = append(c.Aspects, a)
	}
}

// isLoopback tells whether a host:port only answers on this machine.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return true // reported as a bad address elsewhere
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
