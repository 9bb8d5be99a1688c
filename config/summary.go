package config

import (
	"fmt"
	"sort"
	"strings"
)

// Summary describes the config for `buddyrec check`: what this server will
// do, with every secret redacted (camera passwords, key and secret files are
// named but never shown).
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server %s, data in %s\n", c.Name, c.DataDir)
	fmt.Fprintf(&b, "listen: http %s", c.Listen.HTTP)
	if c.Listen.RTSP != "" {
		fmt.Fprintf(&b, ", rtsp %s", c.Listen.RTSP)
	}
	if c.Listen.Gossip != "" {
		fmt.Fprintf(&b, ", gossip %s", c.Listen.Gossip)
	}
	b.WriteString("\n")
	if c.Listen.Gossip == "" {
		b.WriteString("cluster: none (standalone)\n")
	} else {
		enc := "encrypted with " + c.Cluster.KeyFile
		if c.GossipKey == nil {
			enc = "NOT encrypted (insecure = true)"
		}
		fmt.Fprintf(&b, "cluster: join %v, gossip %s, keepalive %s, failover after %s, failback %v after %s\n",
			c.Cluster.Join, enc, c.Cluster.Keepalive, c.Cluster.FailoverAfter, c.Cluster.Failback, c.Cluster.FailbackAfter)
	}
	switch {
	case c.HTTP.CertFile != "":
		trust := "the system store"
		if c.HTTP.CAFile != "" {
			trust += " and " + c.HTTP.CAFile
		}
		fmt.Fprintf(&b, "http: TLS with %s; peers' and PSIM certificates checked against %s\n", c.HTTP.CertFile, trust)
	case c.HTTP.CAFile != "":
		fmt.Fprintf(&b, "http: plain (no cert_file), so peers are called over plain HTTP; ca_file %s is used only for https:// PSIM targets\n", c.HTTP.CAFile)
	}
	fmt.Fprintf(&b, "failover: my %s cameras go to %v\n", c.Failover.Cameras, c.Failover.Buddies)
	fmt.Fprintf(&b, "capacity: %s cameras, %s Mbit/s, %d viewers\n", limit(c.Capacity.Cameras), limitF(c.Capacity.BitrateMbps), c.Capacity.Viewers)
	minFree := fmt.Sprintf("%g%%", c.Storage.MinFreeFraction*100)
	if c.Storage.MinFreeBytes > 0 {
		minFree = fmt.Sprintf("%d bytes", c.Storage.MinFreeBytes)
	}
	fmt.Fprintf(&b, "storage: segments %s, parts %s, retention %s, min free %s, sync %s\n", c.Storage.Segment, c.Storage.Part, c.Storage.Retention, minFree, c.Storage.SyncMethod)
	fmt.Fprintf(&b, "cameras (%d):\n", len(c.Cameras))
	for _, cam := range c.Cameras {
		crit := ""
		if cam.Critical {
			crit = " critical"
		}
		fmt.Fprintf(&b, "  %s  %s  %s%s, ~%g Mbit/s%s\n", cam.ID(c.Name), cam.RedactedURL(), cam.Transport, crit, cam.BitrateMbps, cam.credentialSource())
	}
	for _, p := range c.PSIM {
		ev := "all events"
		if len(p.Events) > 0 {
			ev = strings.Join(p.Events, ", ")
		}
		fmt.Fprintf(&b, "psim: %s (%s), secret from %s\n", RedactURL(p.URL), ev, p.SecretFile)
	}
	for _, a := range c.Aspects {
		keys := make([]string, 0, len(a.Params))
		for k := range a.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			v := a.Params[k]
			if IsSecretKey(k) {
				v = "xxxxx"
			}
			kv = append(kv, k+"="+v)
		}
		fmt.Fprintf(&b, "aspect: %s %s %s\n", a.Kind, a.Name, strings.Join(kv, " "))
	}
	return b.String()
}

// IsSecretKey tells whether an aspect parameter name looks like it holds a
// credential, so it is redacted wherever it is shown.
func IsSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "secret", "token", "key", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func limit(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

func limitF(f float64) string {
	if f == 0 {
		return "unlimited"
	}
	return fmt.Sprint(f)
}
