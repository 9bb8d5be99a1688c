package worker

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/recorder"
)

// RegroupEnv names the environment variable that tests set to shorten
// PoolOptions.RegroupAfter of a supervisor, e.g. "5s". Only tests set it.
const RegroupEnv = "BUDDYREC_TEST_WORKER_REGROUP"

// DefaultRegroupAfter is how long a camera split out by a crash loop
// must record alone without its worker failing before it shares a
// worker again. Long enough that a camera that crashes its worker now
// and then (a firmware bug hit every few minutes) stays alone; short
// enough that the innocent cameras of a split do not each keep a
// process (and its CPU and memory) for good.
const DefaultRegroupAfter = 10 * time.Minute

// EventRegrouped: a camera split out by a crash loop recorded alone
// without a failure for RegroupAfter and shares a worker again, moved
// make before break.
const EventRegrouped EventKind = "regrouped"

// regroupMove is one camera going from the worker it records alone in
// into a shared one.
type regroupMove struct {
	cam      recorder.Camera
	from, to *group
}

// stableLocked reports whether g's worker has recorded for RegroupAfter
// without failing (p.mu held).
func (p *Pool) stableLocked(g *group, now time.Time) bool {
	if g.removed || g.culprit || g.proc == nil || now.Sub(g.created) < p.o.RegroupAfter {
		return false
	}
	if n := len(g.crashes); n > 0 && now.Sub(g.crashes[n-1]) < p.o.RegroupAfter {
		return false
	}
	return now.Sub(g.regroupFailed) >= p.o.RegroupAfter
}

// nextRegroupLocked chooses the next camera to regroup (p.mu held): one
// recording alone after a split, stable, into the fullest other stable
// group with room. Two stable loners make a shared group of their own.
// A culprit is never moved, nor moved in with.
func (p *Pool) nextRegroupLocked(now time.Time) (regroupMove, bool) {
	for _, g := range p.groups {
		if len(g.cams) != 1 || !p.isolated[g.cams[0].ID] || !p.stableLocked(g, now) {
			continue
		}
		var best *group
		for _, t := range p.groups {
			if t == g || len(t.cams) == 0 || len(t.cams) >= p.o.PerWorker || !p.stableLocked(t, now) {
				continue
			}
			if best == nil || len(t.cams) > len(best.cams) {
				best = t
			}
		}
		if best != nil {
			return regroupMove{cam: g.cams[0], from: g, to: best}, true
		}
	}
	return regroupMove{}, false
}

// regroupLoop regroups, one camera at a time, the cameras a crash loop
// split out that have proved innocent.
func (p *Pool) regroupLoop() {
	t := time.NewTicker(min(max(p.o.RegroupAfter/4, time.Second), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		mv, ok := p.nextRegroupLocked(time.Now())
		p.mu.Unlock()
		if ok {
			p.regroup(mv)
		}
	}
}

// regroup moves mv.cam into mv.to, make before break, by the rule of
// every move (control.Covered): the shared worker records the camera
// beside the lone one, which stops only once its durable footage
// reaches the overlap past the shared worker's first durable frame of
// it. A camera that does not get there within 30 s (one that allows a
// single session) stays where it was, and is tried again after
// RegroupAfter.
func (p *Pool) regroup(mv regroupMove) {
	p.upgrade.Lock() // one make-before-break at a time
	defer p.upgrade.Unlock()
	id := mv.cam.ID
	p.mu.Lock()
	if p.closed || mv.from.removed || mv.to.removed || len(mv.from.cams) != 1 || mv.from.cams[0].ID != id ||
		len(mv.to.cams) >= p.o.PerWorker || slices.ContainsFunc(mv.to.cams, func(c recorder.Camera) bool { return c.ID == id }) {
		p.mu.Unlock()
		return
	}
	mv.cam = mv.from.cams[0] // as Set last gave it
	p.moving[id] = mv
	p.update(mv.to, append(slices.Clone(mv.to.cams), mv.cam))
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.moving, id)
		p.mu.Unlock()
	}()
	p.log.Info("regrouping a camera that recorded alone without a failure", "camera", id, "into_slot", mv.to.slot)

	deadline := time.Now().Add(30 * time.Second)
	for {
		covered, intact := p.regroupCovered(mv)
		if !intact || p.ctx.Err() != nil {
			return // Set removed the camera or a group meanwhile: it decided
		}
		if covered {
			break
		}
		if time.Now().After(deadline) {
			p.mu.Lock()
			p.update(mv.to, slices.DeleteFunc(slices.Clone(mv.to.cams), func(c recorder.Camera) bool { return c.ID == id }))
			mv.from.regroupFailed = time.Now()
			p.mu.Unlock()
			p.log.Warn("regrouping gave up: the shared worker made nothing durable of the camera in 30 s; it records alone on", "camera", id)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}

	p.mu.Lock()
	if !p.movingIntactLocked(mv) || p.closed {
		p.mu.Unlock()
		return
	}
	p.byCam[id] = mv.to
	p.update(mv.from, nil) // its worker stops: watch sees no cameras
	mv.from.removed = true
	p.groups = slices.DeleteFunc(p.groups, func(g *group) bool { return g == mv.from })
	var with []string
	for _, c := range mv.to.cams {
		delete(p.isolated, c.ID) // a shared worker again, stable cameras all
		if c.ID != id {
			with = append(with, c.ID)
		}
	}
	slot := mv.to.slot
	var resolves []string
	if cond := p.isoAlarms.settle(id); cond != "" {
		resolves = []string{cond} // the last innocent of its crash loop
	}
	p.mu.Unlock()
	p.o.OnEvent(Event{Kind: EventRegrouped, Cameras: []string{id}, Resolves: resolves, Text: fmt.Sprintf(
		"camera %s recorded alone for %v without a failure since a crash loop split its worker: it shares worker slot %d with %s again, moved make before break",
		id, p.o.RegroupAfter, slot, strings.Join(with, ", "))})
}

// regroupCovered reports whether mv.to's durable footage of the camera
// overlaps mv.from's, and whether the move is still as it began (intact).
func (p *Pool) regroupCovered(mv regroupMove) (covered, intact bool) {
	p.mu.Lock()
	intact = p.movingIntactLocked(mv)
	from, to := mv.from.idx, mv.to.idx
	recording := mv.from.status[mv.cam.ID].State == recorder.StateRecording
	p.mu.Unlock()
	if !intact || from == nil || to == nil {
		return false, intact
	}
	newFrom := to.footageOf(mv.cam.ID).From
	if !recording {
		return !newFrom.IsZero(), true // the lone worker protects nothing
	}
	return control.Covered(from.footageOf(mv.cam.ID), newFrom, control.DefaultHandoffOverlap), true
}

// movingIntactLocked reports whether both groups of mv still hold its
// camera (p.mu held): Set may have removed it, or a group, meanwhile.
func (p *Pool) movingIntactLocked(mv regroupMove) bool {
	has := func(g *group) bool {
		return !g.removed && slices.ContainsFunc(g.cams, func(c recorder.Camera) bool { return c.ID == mv.cam.ID })
	}
	return has(mv.from) && has(mv.to)
}

// regroupAfter is PoolOptions.RegroupAfter's default: DefaultRegroupAfter,
// or what a test set in RegroupEnv.
func regroupAfter() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(RegroupEnv)); err == nil && d > 0 {
		return d
	}
	return DefaultRegroupAfter
}
