package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/camera"
)

// cmdPlan asks the running server where every camera of the site would be
// recorded if the named servers failed now.
func cmdPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fail := fs.String("fail", "", "servers assumed failed, comma-separated (e.g. rec-a or rec-a,rec-b); empty: the plan as it stands")
	cfg, code := loadConfig(fs, args, stderr)
	if cfg == nil {
		return code
	}
	a, err := newServerAPI(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec plan:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p api.PlanPreview
	if err := a.getJSON(ctx, "/api/v1/plan?fail="+url.QueryEscape(*fail), &p); err != nil {
		fmt.Fprintf(stderr, "buddyrec plan: %s (%s): %v\n", cfg.Name, a.base, err)
		return 1
	}
	printPlan(stdout, cfg.Name, p)
	return 0
}

// printPlan writes a preview as a table, one camera a line, then a
// summary per failed server.
func printPlan(w io.Writer, asked string, p api.PlanPreview) {
	if len(p.Fail) == 0 {
		fmt.Fprintf(w, "the plan as it stands (computed by %s):\n\n", asked)
	} else {
		fmt.Fprintf(w, "if %s failed now (computed by %s):\n\n", strings.Join(p.Fail, " and "), asked)
	}
	failed := map[string]bool{}
	for _, f := range p.Fail {
		failed[f] = true
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tRECORDED BY\t")
	rows := map[string]string{}
	for _, c := range p.Cameras {
		rows[c.ID] = c.Server
	}
	for _, id := range p.Unplaced {
		rows[id] = ""
	}
	for _, id := range sortedIDs(rows) {
		home := camera.HomeOf(id)
		switch srv := rows[id]; {
		case srv == "":
			fmt.Fprintf(tw, "%s\tNOT RECORDED\t\n", id)
		case srv != home:
			fmt.Fprintf(tw, "%s\t%s\t(moves from %s)\n", id, srv, home)
		default:
			fmt.Fprintf(tw, "%s\t%s\t\n", id, srv)
		}
	}
	tw.Flush()
	if len(p.Fail) > 0 {
		fmt.Fprintln(w)
		for _, f := range p.Fail {
			fmt.Fprintf(w, "%s fails: %s\n", f, p.IfFails(f))
		}
	}
	if len(p.Unplaced) > 0 {
		fmt.Fprintf(w, "%d camera(s) would not be recorded: %s\n", len(p.Unplaced), strings.Join(p.Unplaced, ", "))
	}
}

func sortedIDs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
