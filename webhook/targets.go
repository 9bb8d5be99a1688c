package webhook

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// buildTargets validates ts in configuration order; invalid ones are kept
// (disabled, for Stats and the alarm) but not in valid.
func buildTargets(ts []Target) (targets, valid, invalid []*target) {
	seen := map[string]bool{}
	for _, t := range ts {
		tg := &target{t: t, safeURL: SafeURL(t.URL), bucket: bucketName(t.Name), wake: make(chan struct{}, 1)}
		err := t.Validate()
		if err == nil && seen[t.Name] {
			err = fmt.Errorf("webhook target %s: duplicate name", t.Name)
		}
		if err != nil {
			tg.invalid, tg.disabled, tg.lastErr = true, true, err.Error()
			invalid = append(invalid, tg)
		} else {
			tg.key, _ = ParseSecret(t.Secret)
			valid = append(valid, tg)
		}
		seen[t.Name] = true
		targets = append(targets, tg)
	}
	return targets, valid, invalid
}

// startLocked starts t's sender under Run's context; ob.mu held, Run
// running.
func (ob *Outbox) startLocked(t *target) {
	ctx, cancel := context.WithCancel(ob.runCtx)
	t.stop = cancel
	ob.senders.Add(1)
	ob.wg.Add(1)
	go func() {
		defer ob.wg.Done()
		defer ob.senders.Done()
		ob.sendLoop(ctx, t)
	}()
}

// SetTargets replaces the targets of a running outbox (a config reload).
// A target whose name, URL, secret and filter are unchanged keeps its
// sender, its queue position and its counters; a changed target (same
// name, so the same queue) is sent its pending notices with the new URL
// and secret; a removed target's sender stops and its notices stay on
// disk until a target of that name returns. Invalid targets are reported
// through OnAlarm, as at Open.
func (ob *Outbox) SetTargets(ts []Target) error {
	ob.setMu.Lock()
	defer ob.setMu.Unlock()
	targets, valid, invalid := buildTargets(ts)
	ob.mu.Lock()
	old := map[string]*target{}
	for _, t := range ob.valid {
		old[t.t.Name] = t
	}
	closed := ob.closed
	ob.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var started []*target
	for i, t := range valid {
		if o, ok := old[t.t.Name]; ok && sameTarget(o.t, t.t) {
			valid[i] = o
			targets[slices.Index(targets, t)] = o
			delete(old, t.t.Name)
			continue
		}
		started = append(started, t)
	}
	// A target is in valid only once its bucket exists (Enqueue writes to
	// it). Outside ob.mu: the file's reopen hook takes ob.mu.
	if len(started) > 0 {
		ob.reopen()
		err := ob.db.Update(func(tx *bolt.Tx) error {
			for _, t := range started {
				if _, err := tx.CreateBucketIfNotExists(t.bucket); err != nil {
					return fmt.Errorf("bucket for %s: %w", t.t.Name, err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("set webhook targets: %w", err)
		}
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.closed {
		return ErrClosed
	}
	for _, t := range old {
		if t.stop != nil {
			t.stop()
		}
	}
	ob.targets, ob.valid = targets, valid
	if ob.running {
		for _, t := range started {
			ob.startLocked(t)
		}
	}
	for _, t := range invalid {
		ob.log.Error("webhook target disabled", "target", t.t.Name, "err", t.lastErr)
		go ob.alarm(AlarmDisabled, t.t.Name, t.lastErr)
	}
	return nil
}

func sameTarget(a, b Target) bool {
	return a.Name == b.Name && a.URL == b.URL && a.Secret == b.Secret && slices.Equal(a.Events, b.Events)
}
