package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/buddyrec/buddyrec/failover"
)

// SiteReport is what CheckSite found: what no single file can know is
// wrong (two servers with one name, a buddy nobody is called, different
// gossip keys, one camera recorded twice), and what each server's failure
// would leave unrecorded. Problems make the site unusable as
// written (check exits non-zero); Warnings are risks an installer may
// accept, such as a failure that leaves cameras unrecorded.
type SiteReport struct {
	Problems Problems
	Warnings Problems
	// Failures previews each server's failure on its own, by server name:
	// where its cameras would go, from the same planner the servers run.
	Failures []SiteFailure
	// KeyFingerprint is the short SHA-256 fingerprint of the gossip key
	// every server shares ("" when they do not, or run without a key).
	KeyFingerprint string
}

// SiteFailure is one server's failure as the planner would handle it.
type SiteFailure struct {
	Server string
	// To counts, by adopting server, the cameras it would take.
	To map[string]int
	// Unplaced lists the failed server's cameras nobody would record
	// although they may fail over; ByDesign those that stay unrecorded
	// because the server sends only critical cameras (cameras = "critical").
	Unplaced, ByDesign []string
}

// String reads "2 → rec-b, 1 → rec-c, 1 not recorded".
func (f SiteFailure) String() string {
	names := make([]string, 0, len(f.To))
	for n := range f.To {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if f.To[names[i]] != f.To[names[j]] {
			return f.To[names[i]] > f.To[names[j]]
		}
		return names[i] < names[j]
	})
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%d → %s", f.To[n], n))
	}
	if len(f.Unplaced) > 0 {
		parts = append(parts, fmt.Sprintf("%d not recorded", len(f.Unplaced)))
	}
	if len(f.ByDesign) > 0 {
		parts = append(parts, fmt.Sprintf("%d non-critical stay off (cameras = \"critical\")", len(f.ByDesign)))
	}
	if len(parts) == 0 {
		return "no cameras to move"
	}
	return strings.Join(parts, ", ")
}

// KeyFingerprint is a short SHA-256 fingerprint of a gossip key, safe to
// print: it tells whether two servers hold the same key without revealing
// it (the key is 16–32 random bytes; 48 bits of its hash say nothing).
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// CameraTarget is what identifies the device behind a camera URL: scheme,
// host and port (the RTSP default made explicit) and path, with any
// credentials left out, and the query kept only as a hash (NVR channels
// differ by it; it may carry tokens). Two cameras with one target record
// the same stream.
func CameraTarget(raw string) (key, shown string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	shown = net.JoinHostPort(host, port) + path
	key = shown
	if u.RawQuery != "" {
		sum := sha256.Sum256([]byte(u.RawQuery))
		key += "?" + hex.EncodeToString(sum[:8])
		shown += "?…"
	}
	return key, shown, true
}

// lineOf finds where key path (e.g. "failover.buddies") is set in c's file;
// 0 when the file cannot be read again.
func lineOf(c *Config, path string) int {
	src, err := os.ReadFile(c.File)
	if err != nil {
		return 0
	}
	return indexLines(string(src)).lookup(path)
}

// CheckSite checks configs that were each loaded without problems as one
// site. It never prints a secret: keys appear as fingerprints, camera URLs
// as host, port and path.
func CheckSite(cfgs []*Config) SiteReport {
	var r SiteReport
	problem := func(c *Config, path, format string, args ...any) {
		p := Problem{Msg: fmt.Sprintf(format, args...), Key: display(path)}
		if c != nil {
			p.File, p.Line = c.File, lineOf(c, path)
		} else {
			p.File, p.Key = "site", ""
		}
		r.Problems = append(r.Problems, p)
	}

	// Names unique.
	byName := map[string]*Config{}
	for _, c := range cfgs {
		if first, dup := byName[c.Name]; dup {
			problem(c, "name", "%q is also the name of %s: every server of a site needs its own", c.Name, locOf(first, "name"))
			continue
		}
		byName[c.Name] = c
	}

	// Every buddy exists.
	for _, c := range cfgs {
		for _, b := range c.Failover.Buddies {
			if _, ok := byName[b]; !ok {
				problem(c, "failover.buddies", "buddy %q is none of the site's servers (%s)", b, strings.Join(sortedNames(byName), ", "))
			}
		}
	}

	// One gossip key, one timing: servers that disagree cannot hear each
	// other, or declare each other dead at different times.
	keys := map[string][]string{}
	timing := map[string][]string{}
	for _, c := range cfgs {
		if c.Listen.Gossip == "" {
			continue
		}
		fp := "no key (insecure = true)"
		if c.GossipKey != nil {
			fp = KeyFingerprint(c.GossipKey)
		}
		keys[fp] = append(keys[fp], c.Name)
		t := fmt.Sprintf("keepalive %s, failover_after %s", c.Cluster.Keepalive, c.Cluster.FailoverAfter)
		timing[t] = append(timing[t], c.Name)
	}
	if len(keys) > 1 {
		problem(nil, "", "servers gossip with different keys, so they cannot hear each other: %s; copy one key_file to every server", describeGroups(keys))
	} else {
		for fp := range keys {
			if strings.HasPrefix(fp, "sha256:") {
				r.KeyFingerprint = fp
			}
		}
	}
	if len(timing) > 1 {
		problem(nil, "", "[cluster] timing must be the same on every server: %s", describeGroups(timing))
	}

	// One device, one camera.
	type camRef struct {
		c   *Config
		idx int
	}
	seen := map[string]camRef{}
	for _, c := range cfgs {
		for i, cam := range c.Cameras {
			key, shown, ok := CameraTarget(cam.URL)
			if !ok {
				continue
			}
			if first, dup := seen[key]; dup {
				fc := first.c.Cameras[first.idx]
				path := fmt.Sprintf("camera.%d.url", i)
				p := Problem{File: c.File, Line: lineOf(c, path), Key: display(path),
					Msg: fmt.Sprintf("%s records %s, which %s (%s) records already: the same camera twice doubles its load and is never a backup (use [failover] buddies)",
						cam.ID(c.Name), shown, fc.ID(first.c.Name), locOf(first.c, fmt.Sprintf("camera.%d.url", first.idx)))}
				r.Problems = append(r.Problems, p)
				continue
			}
			seen[key] = camRef{c, i}
		}
	}

	// Each server's failure, planned as the servers would plan it.
	r.Failures, r.Warnings = previewFailures(cfgs, byName)
	return r
}

// previewFailures plans the site with every server up, then with each
// server down in turn (the survivors keeping what they record, as their
// claims do), and warns where a failure leaves cameras unrecorded.
func previewFailures(cfgs []*Config, byName map[string]*Config) ([]SiteFailure, Problems) {
	var warnings Problems
	servers := make([]failover.Server, 0, len(byName))
	for _, name := range sortedNames(byName) {
		c := byName[name]
		s := failover.Server{Name: c.Name, Alive: true, Stable: true,
			Capacity: failover.Capacity{Cameras: c.Capacity.Cameras, BitrateMbps: c.Capacity.BitrateMbps},
			Buddies:  c.Failover.Buddies, Mode: c.Failover.Cameras, Failback: c.Cluster.Failback}
		for _, cam := range c.Cameras {
			s.Cameras = append(s.Cameras, failover.Camera{Name: cam.Name, Critical: cam.Critical, BitrateMbps: cam.BitrateMbps})
		}
		servers = append(servers, s)
	}
	base := failover.Compute(failover.Input{Servers: servers})
	for _, u := range base.Unplaced {
		c := byName[u.Home]
		warnings = append(warnings, Problem{File: c.File, Line: lineOf(c, "capacity.cameras"),
			Msg: fmt.Sprintf("%s is not recorded even with every server up (%s): raise [capacity]", u.Camera, u.Reason)})
	}
	var out []SiteFailure
	for i, s := range servers {
		if len(s.Cameras) == 0 {
			continue
		}
		in := slices.Clone(servers)
		for j := range in {
			in[j].Recording = base.For(in[j].Name)
		}
		in[i].Alive, in[i].Stable = false, false
		plan := failover.Compute(failover.Input{Servers: in})
		f := SiteFailure{Server: s.Name, To: map[string]int{}}
		for id, owner := range plan.Owner {
			if plan.Home[id] == s.Name {
				f.To[owner]++
			}
		}
		critical := map[string]bool{}
		for _, cam := range s.Cameras {
			critical[failover.CameraID(s.Name, cam.Name)] = cam.Critical
		}
		for _, u := range plan.Unplaced {
			if u.Home != s.Name {
				continue
			}
			if s.Mode == failover.ModeCritical && !critical[u.Camera] {
				f.ByDesign = append(f.ByDesign, u.Camera)
			} else {
				f.Unplaced = append(f.Unplaced, u.Camera)
			}
		}
		out = append(out, f)
		if len(f.Unplaced) == 0 {
			continue
		}
		c := byName[s.Name]
		why := "its buddies lack the capacity"
		if len(s.Buddies) == 0 {
			why = "it has no buddies"
		}
		warnings = append(warnings, Problem{File: c.File, Line: lineOf(c, "failover.buddies"),
			Msg: fmt.Sprintf("if %s fails: %s — %s not recorded because %s", s.Name, f, strings.Join(f.Unplaced, ", "), why)})
	}
	return out, warnings
}

func locOf(c *Config, path string) string {
	if l := lineOf(c, path); l > 0 {
		return fmt.Sprintf("%s:%d", c.File, l)
	}
	return c.File
}

func sortedNames(m map[string]*Config) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// describeGroups reads "rec-a, rec-b use sha256:…; rec-c uses sha256:…".
func describeGroups(groups map[string][]string) string {
	keys := make([]string, 0, len(groups))
	for k := range groups {
		sort.Strings(groups[k])
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return groups[keys[i]][0] < groups[keys[j]][0] })
	var parts []string
	for _, k := range keys {
		names := groups[k]
		verb := "uses"
		if len(names) > 1 {
			verb = "use"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", strings.Join(names, ", "), verb, k))
	}
	return strings.Join(parts, "; ")
}
