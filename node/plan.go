package node

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/failover"
)

// errNoView: the control loop has not planned yet (the node is settling
// after its start), so there is no site view to preview from.
var errNoView = fmt.Errorf("no site view yet: the server is starting; try again in a few seconds")

// servePlan answers GET /api/v1/plan?fail=rec-a[,rec-b].
func (n *Node) servePlan(w http.ResponseWriter, r *http.Request) {
	var fail []string
	for _, v := range r.URL.Query()["fail"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				fail = append(fail, name)
			}
		}
	}
	p, err := n.PlanIf(fail)
	switch {
	case err == errNoView:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// PlanIf previews where every camera of the site would be recorded if the
// servers in fail died now. It runs failover.Compute over the records the
// control loop last planned from (with their claims, stability and the
// stale-record rule already applied), with the failed servers marked dead:
// the input a survivor's next round would have, so the answer is what a
// real failure does, not an estimate.
func (n *Node) PlanIf(fail []string) (api.PlanPreview, error) {
	n.mu.Lock()
	records, alive := n.seen.ctl.Records, n.seen.ctl.Alive
	planned := n.seen.ctl.Plan.Owner != nil
	n.mu.Unlock()
	if !planned || len(records) == 0 {
		return api.PlanPreview{}, errNoView
	}
	failed := map[string]bool{}
	for _, name := range fail {
		if _, ok := records[name]; !ok {
			return api.PlanPreview{}, fmt.Errorf("fail: no server of the site is called %q (known: %s)", name, strings.Join(sortedKeys(records), ", "))
		}
		failed[name] = true
	}
	up := make(map[string]bool, len(alive))
	for name, a := range alive {
		up[name] = a && !failed[name]
	}
	plan := failover.Compute(control.PlanInput(records, up))
	out := api.PlanPreview{Fail: sortedKeys(failed), Cameras: []api.PlannedCamera{}, Unplaced: []string{}}
	for _, id := range sortedKeys(plan.Owner) {
		out.Cameras = append(out.Cameras, api.PlannedCamera{ID: id, Server: plan.Owner[id]})
	}
	for _, u := range plan.Unplaced {
		out.Unplaced = append(out.Unplaced, u.Camera)
	}
	sort.Strings(out.Unplaced)
	out.Unplaced = slices.Compact(out.Unplaced)
	return out, nil
}

// IfFails previews the failure of each alive server of the site on its
// own: where its cameras would go. The status page shows it per server.
func (n *Node) IfFails() []api.IfFails {
	n.mu.Lock()
	records, alive := n.seen.ctl.Records, n.seen.ctl.Alive
	n.mu.Unlock()
	var out []api.IfFails
	for _, name := range sortedKeys(records) {
		if !alive[name] {
			continue
		}
		p, err := n.PlanIf([]string{name})
		if err != nil {
			continue
		}
		out = append(out, p.IfFails(name))
	}
	return out
}
