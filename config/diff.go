package config

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// What a reload can change in a running server, and what only a restart
// can. Compare sorts every difference between the running configuration
// and a new one into one of the two; the server refuses a reload that
// changes a restart-only key, whole, so what runs is always exactly one
// file (never half of a new one on top of the old).
//
// Restart-only keys are those bound when the process starts: its
// identity and folder (name, data_dir), the sockets it listens on
// ([listen]), the gossip library's key and timing (memberlist cannot
// change them in a running cluster), storage and event-log settings
// their stores were opened with, and the HTTPS and token files of
// [http]. Everything the control loop decides from (cameras, buddies,
// mode, capacity, failback), the PSIM targets and the users file apply
// at once.

// needsRestart classifies every key the loader knows (see keys): true
// for a key that applies only when the server starts. Camera, PSIM and
// aspect keys all reload. users_file reloads, except that adding or
// removing it needs a restart.
var needsRestart = map[string]bool{
	"name": true, "data_dir": true,
	"listen.gossip": true, "listen.http": true, "listen.rtsp": true,
	"cluster.join": true, "cluster.key_file": true, "cluster.insecure": true, "cluster.keepalive": true,
	"cluster.failover_after": true, "cluster.forget_after": true,
	"cluster.failback": false, "cluster.failback_after": false, "cluster.drain_timeout": false,
	"capacity.cameras": false, "capacity.bitrate_mbps": false, "capacity.viewers": false,
	"failover.buddies": false, "failover.cameras": false, "failover.standby": false,
	"storage.segment": true, "storage.part": true, "storage.retention": true, "storage.min_free": true, "storage.backfill_mbps": true, "storage.sync_method": true,
	"events.retention": true,
	"http.users_file":  false, "http.token_file": true, "http.cert_file": true, "http.key_file": true, "http.ca_file": true,
	// the recorder is chosen, and workers grouped, when the server starts
	"recorder.cameras_per_worker": true, "recorder.worker_memory": true,
}

// Change is one difference between two configurations of one server.
type Change struct {
	// Key is the TOML key, e.g. "listen.http" or "camera.lobby.url".
	Key string
	// Line is where the key is set in the new file; 0 when it was removed
	// or has no single line.
	Line int
	// Restart is true for a key that applies only when the server starts.
	Restart bool
	// Msg says what changed. It never holds a secret: camera URLs,
	// passwords, keys and webhook secrets are named, not shown.
	Msg string
}

// Diff is every difference between a running configuration and a new one.
type Diff struct {
	// File is the new configuration's file, for Problems.
	File    string
	Changes []Change
	// Cameras added, removed, and changed so that their pipeline restarts
	// (URL, credentials, transport); by name, sorted. A camera whose
	// planner fields changed (critical, bitrate_mbps) keeps its pipeline
	// and is not listed.
	Added, Removed, Restarted []string
}

// Empty tells whether the two configurations are the same.
func (d Diff) Empty() bool { return len(d.Changes) == 0 }

// NeedsRestart lists the changes to restart-only keys as problems, each
// with file:line, so a refused reload reports them like `check` does.
func (d Diff) NeedsRestart() Problems {
	var ps Problems
	for _, c := range d.Changes {
		if c.Restart {
			ps = append(ps, Problem{File: d.File, Line: c.Line, Key: c.Key,
				Msg: c.Msg + "; this key applies only when the server starts: restart it (systemctl restart buddyrec) instead of reloading"})
		}
	}
	return ps
}

// Summary is one line naming what changed, for the log and the
// config.reloaded event; "" when nothing did.
func (d Diff) Summary() string {
	var parts []string
	if len(d.Added) > 0 {
		parts = append(parts, "cameras added: "+strings.Join(d.Added, ", "))
	}
	if len(d.Removed) > 0 {
		parts = append(parts, "cameras removed: "+strings.Join(d.Removed, ", "))
	}
	if len(d.Restarted) > 0 {
		parts = append(parts, "cameras restarted: "+strings.Join(d.Restarted, ", "))
	}
	var keys []string
	for _, c := range d.Changes {
		// Added, removed and restarted cameras are named above.
		if _, field, ok := strings.Cut(strings.TrimPrefix(c.Key, "camera."), "."); !strings.HasPrefix(c.Key, "camera.") || ok && field != "url" && field != "transport" {
			keys = append(keys, c.Key)
		}
	}
	if len(keys) > 0 {
		parts = append(parts, "changed: "+strings.Join(keys, ", "))
	}
	return strings.Join(parts, "; ")
}

// Compare returns every difference between the running configuration old
// and a new one loaded from a file (both without problems).
func Compare(old, new *Config) Diff {
	d := Diff{File: new.File}
	var src lineIndex
	if b, err := os.ReadFile(new.File); err == nil {
		src = indexLines(string(b))
	}
	line := func(key string) int { return src.lookup(key) }
	add := func(key string, restart bool, msg string) {
		d.Changes = append(d.Changes, Change{Key: key, Line: line(key), Restart: restart, Msg: msg})
	}
	// Values shown in messages are never secret: names, addresses,
	// durations, paths.
	value := func(key string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			add(key, needsRestart[key], fmt.Sprintf("changed from %s to %s", shown(a), shown(b)))
		}
	}

	value("name", old.Name, new.Name)
	value("data_dir", old.DataDir, new.DataDir)
	value("listen.gossip", old.Listen.Gossip, new.Listen.Gossip)
	value("listen.http", old.Listen.HTTP, new.Listen.HTTP)
	value("listen.rtsp", old.Listen.RTSP, new.Listen.RTSP)

	value("cluster.join", old.Cluster.Join, new.Cluster.Join)
	value("cluster.key_file", old.Cluster.KeyFile, new.Cluster.KeyFile)
	if old.Cluster.KeyFile == new.Cluster.KeyFile && !bytes.Equal(old.GossipKey, new.GossipKey) {
		add("cluster.key_file", needsRestart["cluster.key_file"], "the gossip key in "+new.Cluster.KeyFile+" changed")
	}
	value("cluster.insecure", old.Cluster.Insecure, new.Cluster.Insecure)
	value("cluster.keepalive", old.Cluster.Keepalive, new.Cluster.Keepalive)
	value("cluster.failover_after", old.Cluster.FailoverAfter, new.Cluster.FailoverAfter)
	value("cluster.forget_after", old.Cluster.ForgetAfter, new.Cluster.ForgetAfter)
	value("cluster.failback", old.Cluster.Failback, new.Cluster.Failback)
	value("cluster.failback_after", old.Cluster.FailbackAfter, new.Cluster.FailbackAfter)
	value("cluster.drain_timeout", old.Cluster.DrainTimeout, new.Cluster.DrainTimeout)

	value("capacity.cameras", old.Capacity.Cameras, new.Capacity.Cameras)
	value("capacity.bitrate_mbps", old.Capacity.BitrateMbps, new.Capacity.BitrateMbps)
	value("capacity.viewers", old.Capacity.Viewers, new.Capacity.Viewers)

	value("failover.buddies", old.Failover.Buddies, new.Failover.Buddies)
	value("failover.cameras", old.Failover.Cameras, new.Failover.Cameras)
	value("failover.standby", old.Failover.Standby, new.Failover.Standby)

	value("storage.segment", old.Storage.Segment, new.Storage.Segment)
	value("storage.part", old.Storage.Part, new.Storage.Part)
	value("storage.retention", old.Storage.Retention, new.Storage.Retention)
	value("storage.backfill_mbps", old.Storage.BackfillSetting(), new.Storage.BackfillSetting())
	value("storage.sync_method", old.Storage.SyncMethod, new.Storage.SyncMethod)
	if old.Storage.MinFreeFraction != new.Storage.MinFreeFraction || old.Storage.MinFreeBytes != new.Storage.MinFreeBytes {
		add("storage.min_free", needsRestart["storage.min_free"], "changed")
	}
	value("events.retention", old.Events.Retention, new.Events.Retention)
	value("recorder.cameras_per_worker", old.Recorder.CamerasPerWorker, new.Recorder.CamerasPerWorker)
	value("recorder.worker_memory", old.Recorder.WorkerMemory, new.Recorder.WorkerMemory)

	// users_file's content reloads; whether there is one at all decides
	// whether the page asks for a login, which the listener was checked
	// against at start.
	if (old.HTTP.UsersFile == "") != (new.HTTP.UsersFile == "") {
		add("http.users_file", true, fmt.Sprintf("changed from %s to %s", shown(old.HTTP.UsersFile), shown(new.HTTP.UsersFile)))
	} else {
		value("http.users_file", old.HTTP.UsersFile, new.HTTP.UsersFile)
	}
	value("http.token_file", old.HTTP.TokenFile, new.HTTP.TokenFile)
	value("http.cert_file", old.HTTP.CertFile, new.HTTP.CertFile)
	value("http.key_file", old.HTTP.KeyFile, new.HTTP.KeyFile)
	value("http.ca_file", old.HTTP.CAFile, new.HTTP.CAFile)

	d.compareCameras(old.Cameras, new.Cameras, src)
	if !slices.EqualFunc(old.PSIM, new.PSIM, samePSIM) {
		add("psim", false, "the PSIM targets changed")
	}
	if !slices.EqualFunc(old.Aspects, new.Aspects, sameAspect) {
		add("aspect", false, "the aspects changed")
	}
	return d
}

// compareCameras sorts cameras into added, removed and restarted, and
// notes each changed field. A camera is the same camera when its name is:
// a renamed camera is a new one (its footage is indexed by id).
func (d *Diff) compareCameras(old, new []Camera, src lineIndex) {
	was := map[string]Camera{}
	for _, c := range old {
		was[c.Name] = c
	}
	is := map[string]bool{}
	for i, c := range new {
		is[c.Name] = true
		key := "camera." + c.Name
		o, ok := was[c.Name]
		if !ok {
			d.Added = append(d.Added, c.Name)
			d.Changes = append(d.Changes, Change{Key: key, Line: c.Line, Msg: "added"})
			continue
		}
		field := func(f, msg string) {
			d.Changes = append(d.Changes, Change{Key: key + "." + f, Line: max(src.lookup(fmt.Sprintf("camera.%d.%s", i, f)), c.Line), Msg: msg})
		}
		restart := false
		if o.URL != c.URL {
			// The URL carries the credentials: say which part changed
			// only by what may be shown.
			if RedactURL(o.URL) != RedactURL(c.URL) {
				field("url", "changed from "+RedactURL(o.URL)+" to "+RedactURL(c.URL))
			} else {
				field("url", "the credentials changed")
			}
			restart = true
		}
		if o.Transport != c.Transport {
			field("transport", fmt.Sprintf("changed from %s to %s", o.Transport, c.Transport))
			restart = true
		}
		if o.Critical != c.Critical {
			field("critical", fmt.Sprintf("changed from %t to %t", o.Critical, c.Critical))
		}
		if o.BitrateMbps != c.BitrateMbps {
			field("bitrate_mbps", fmt.Sprintf("changed from %g to %g", o.BitrateMbps, c.BitrateMbps))
		}
		if restart {
			d.Restarted = append(d.Restarted, c.Name)
		}
	}
	for _, c := range old {
		if !is[c.Name] {
			d.Removed = append(d.Removed, c.Name)
			d.Changes = append(d.Changes, Change{Key: "camera." + c.Name, Msg: "removed"})
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Restarted)
}

func samePSIM(a, b PSIM) bool {
	return a.URL == b.URL && a.SecretFile == b.SecretFile && a.Secret == b.Secret && slices.Equal(a.Events, b.Events)
}

func sameAspect(a, b Aspect) bool {
	if a.Kind != b.Kind || a.Name != b.Name || len(a.Params) != len(b.Params) {
		return false
	}
	for k, v := range a.Params {
		if w, ok := b.Params[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// shown formats a non-secret value for a change message.
func shown(v any) string {
	switch t := v.(type) {
	case string:
		if t == "" {
			return "(unset)"
		}
		return fmt.Sprintf("%q", t)
	case []string:
		if len(t) == 0 {
			return "(none)"
		}
		return "[" + strings.Join(t, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// KeyLine is the line where key (e.g. "http.users_file") is set in config
// source src, or of its closest enclosing table; 0 when neither is.
func KeyLine(src []byte, key string) int { return indexLines(string(src)).lookup(key) }
