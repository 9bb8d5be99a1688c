package worker

import (
	"slices"
	"strings"
)

// isolationPrefix starts the alarm condition of a crash loop's split (see
// isolationAlarms), so that a restarted server can resolve the ones its
// predecessor left open.
const isolationPrefix = "worker.isolated/"

// IsolationCondition is the alarm condition of a split of cams (in any
// order); of none, the prefix every such condition starts with.
func IsolationCondition(cams []string) string {
	return isolationPrefix + strings.Join(slices.Sorted(slices.Values(cams)), ",")
}

// isolationAlarms tracks the open worker.isolated alarms of a Pool: one
// per crash loop that split a shared worker, naming its cameras. Such an
// alarm holds while one of them is unaccounted for; a camera is
// accounted for once it shares a worker again (a regroup), is found to be
// the culprit (which raises an alarm of its own, worker.crash_loop), or
// is no longer recorded here. The last of them resolves the alarm: an
// operator is not left with an alarm for a condition that has ended.
type isolationAlarms struct {
	pending map[string]map[string]bool // condition → its cameras not yet accounted for
	of      map[string]string          // camera → the condition it belongs to
}

// open starts the alarm of a split of cams and returns its condition, and
// the earlier splits' conditions it resolves: a camera split again
// belongs to the new split, which may leave an earlier one with none
// pending.
func (a *isolationAlarms) open(cams []string) (cond string, resolves []string) {
	if a.pending == nil {
		a.pending, a.of = map[string]map[string]bool{}, map[string]string{}
	}
	cond = IsolationCondition(cams)
	set := map[string]bool{}
	for _, c := range cams {
		if old, ok := a.of[c]; ok && old != cond {
			if r := a.settle(c); r != "" {
				resolves = append(resolves, r)
			}
		}
		set[c] = true
		a.of[c] = cond
	}
	a.pending[cond] = set
	return cond, resolves
}

// settle accounts for cam and returns the condition it resolves: the one
// cam belonged to, if no camera of it is left pending, or "".
func (a *isolationAlarms) settle(cam string) string {
	cond, ok := a.of[cam]
	if !ok {
		return ""
	}
	delete(a.of, cam)
	set := a.pending[cond]
	delete(set, cam)
	if len(set) > 0 {
		return ""
	}
	delete(a.pending, cond)
	return cond
}
