package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/web"
	"github.com/buddyrec/buddyrec/webhook"
)

// Reload re-reads the config file a server runs from and applies what
// changed without a restart (SIGHUP, `buddyrec reload`, POST
// /api/v1/reload).
//
// Invariants:
//   - A config is applied whole or not at all. One with any problem (it
//     does not parse or validate, or it changes a key that needs a
//     restart, see config.Compare) is refused: the running config stays,
//     every problem (file:line, never a secret) goes to the log and to a
//     config.reload_failed alarm, which the next good reload (or start)
//     resolves.
//   - The control loop decides from the config in force, read once per
//     round: a reload hands the new one to the loop, which swaps it
//     between two rounds and runs a round at once. So added cameras start
//     and removed ones stop in that round, cameras that move to another
//     server because of the reload (a capacity cut on a server holding a
//     dead server's cameras) move make-before-break through the same rules as a failback
//     (control.State.Releasing), and the new record (cameras, buddies,
//     config hash) is gossiped from that round on.
//   - A camera whose URL, credentials or transport did not change keeps
//     its pipeline: recorder.Manager.Set restarts only cameras whose
//     recorder.Camera changed, so their segment file continues.

// runningConfig is the configuration in force and the fingerprint of the
// file bytes it was parsed from (the record's config_hash).
type runningConfig struct {
	cfg  *config.Config
	hash string
}

// reloadRequest hands a new configuration to the control loop; done is
// closed once a round has run with it.
type reloadRequest struct {
	rc   *runningConfig
	done chan struct{}
}

// conditionReloadFailed is the condition of the config.reload_failed
// alarm: one at a time is open, the latest refused reload's.
const conditionReloadFailed = string(events.TypeConfigReloadFailed)

// ErrReloadRefused is returned by Reload for a config that was refused;
// the result lists the problems.
var ErrReloadRefused = errors.New("config reload refused")

// config is the configuration in force. The control loop changes it only
// between rounds; other goroutines may see the new one a round early.
// Keys that need a restart may be read from n.cfg, the start config:
// a reload never changes them.
func (n *Node) config() *config.Config { return n.running.Load().cfg }

func (n *Node) initReload(c *config.Config) {
	hash := ""
	if b, err := os.ReadFile(c.File); err == nil {
		hash = configHash(b)
	}
	n.running.Store(&runningConfig{cfg: c, hash: hash})
	n.reloads = make(chan reloadRequest)
}

// psimTargets are the webhook targets of c's [[psim]] tables, named by
// position ("psim1", ...): a target's queue is kept under its name.
func psimTargets(c *config.Config) []webhook.Target {
	targets := make([]webhook.Target, 0, len(c.PSIM))
	for i, p := range c.PSIM {
		targets = append(targets, webhook.Target{Name: fmt.Sprintf("psim%d", i+1), URL: p.URL, Secret: p.Secret, Events: p.Events})
	}
	return targets
}

// configHash fingerprints a config file's bytes so that technicians see
// when two servers run different revisions of a site's configuration.
func configHash(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:6])
}

// Reload re-reads the config file and applies it, or refuses it whole;
// see the invariants above. Reloads run one at a time. It returns
// ErrReloadRefused (with the problems in the result) for a refused config,
// and ctx's error if ctx ends before the control loop took the config
// (then nothing changed).
func (n *Node) Reload(ctx context.Context) (api.Reload, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	cur := n.running.Load()
	path := cur.cfg.File
	n.log.Info("reloading config", "file", path)
	src, err := os.ReadFile(path)
	if err != nil {
		return n.refuse(cur, config.Problems{{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}})
	}
	next, err := config.Parse(path, string(src))
	if err != nil {
		var ps config.Problems
		if !errors.As(err, &ps) {
			ps = config.Problems{{File: path, Msg: err.Error()}}
		}
		return n.refuse(cur, ps)
	}
	d := config.Compare(cur.cfg, next)
	ps := d.NeedsRestart()
	// What only the running server checks: the users file it will read.
	if f := next.HTTP.UsersFile; f != "" {
		if _, err := web.ReadUsersFile(f); err != nil {
			ps = append(ps, config.Problem{File: path, Line: config.KeyLine(src, "http.users_file"), Key: "http.users_file", Msg: err.Error()})
		}
	}
	if len(ps) > 0 {
		return n.refuse(cur, ps)
	}
	rc := &runningConfig{cfg: next, hash: configHash(src)}
	if err := n.handToLoop(ctx, rc); err != nil {
		return api.Reload{}, err
	}
	res := api.Reload{Applied: true, Summary: d.Summary(), Added: d.Added, Removed: d.Removed, Restarted: d.Restarted, ConfigHash: rc.hash}
	text := "config reloaded from " + path + ": "
	if res.Summary == "" {
		text += "nothing changed"
	} else {
		text += res.Summary
	}
	n.log.Info("config reloaded", "file", path, "config_hash", rc.hash, "changes", res.Summary)
	n.appendEvent(events.Event{Server: n.cfg.Name, Type: events.TypeConfigReloaded, Severity: events.SeverityInfo,
		Text: text, Resolves: []string{conditionReloadFailed}})
	return res, nil
}

// handToLoop makes rc the config in force: through the control loop when
// it runs, so that the swap falls between two rounds, and waits for the
// round that applies it.
func (n *Node) handToLoop(ctx context.Context, rc *runningConfig) error {
	n.runMu.Lock()
	done := n.runDone
	if n.closed && done == nil {
		n.runMu.Unlock()
		return ErrClosed
	}
	if done == nil {
		// Run has not started (and waits for runMu): it starts the
		// cluster from the config in force.
		n.running.Store(rc)
		n.applyServices(rc.cfg)
		n.runMu.Unlock()
		return nil
	}
	n.runMu.Unlock()
	req := reloadRequest{rc: rc, done: make(chan struct{})}
	select {
	case n.reloads <- req:
	case <-done:
		return errors.New("reload: the server is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Handed over, it will be applied: wait for that round (one round,
	// with pipelines stopping) whatever ctx says, so the outcome is logged.
	select {
	case <-req.done:
	case <-done: // the loop swapped it, then the server stopped
	}
	return nil
}

// applyReload is the control loop's half of a reload (on its goroutine,
// after Run started the cluster): apply what the loop does not decide,
// swap the config and run a round with it at once.
func (n *Node) applyReload(req reloadRequest, reconcile func()) {
	next := req.rc.cfg
	n.applyServices(next)
	// The secrets before the record: a buddy must hold an added camera's
	// credentials by the time the record naming it arrives.
	if n.cluster != nil {
		n.cluster.SetBuddies(next.Failover.Buddies)
		if err := n.cluster.SetSecrets(mustJSON(secretRecord(next))); err != nil {
			n.log.Warn("publish inventory secrets", "err", err)
		}
	}
	n.running.Store(req.rc)
	reconcile()
	close(req.done)
}

// applyServices gives the users file and the PSIM targets of c to the
// services that read them.
func (n *Node) applyServices(c *config.Config) {
	if c.HTTP.UsersFile != "" {
		if err := n.auth.SetUsersFile(c.HTTP.UsersFile); err != nil {
			n.log.Warn("apply the users file", "err", err)
		}
	}
	if err := n.outbox.SetTargets(psimTargets(c)); err != nil {
		n.log.Warn("apply the PSIM targets", "err", err)
	}
}

// refuse reports a refused config: every problem to the log, one alarm
// naming them all (superseding the previous refusal's), and the running
// config untouched.
func (n *Node) refuse(cur *runningConfig, ps config.Problems) (api.Reload, error) {
	res := api.Reload{Applied: false, ConfigHash: cur.hash}
	for _, p := range ps {
		res.Problems = append(res.Problems, p.String())
		n.log.Error("config reload refused", "problem", p.String())
	}
	n.log.Error("config reload refused: the running config stays in force", "file", cur.cfg.File, "problems", len(ps))
	n.appendEvent(events.Event{Server: n.cfg.Name, Type: events.TypeConfigReloadFailed, Severity: events.SeverityAlarm,
		Text:      fmt.Sprintf("config reload refused, the running config stays in force: %s", strings.Join(res.Problems, "; ")),
		Condition: conditionReloadFailed, Resolves: []string{conditionReloadFailed}})
	return res, ErrReloadRefused
}

// serveReload is POST /api/v1/reload: `buddyrec reload` calls it. A
// refused config answers 422 with the problems.
func (n *Node) serveReload(w http.ResponseWriter, r *http.Request) {
	res, err := n.Reload(r.Context())
	switch {
	case errors.Is(err, ErrReloadRefused):
		writeJSON(w, http.StatusUnprocessableEntity, res)
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
