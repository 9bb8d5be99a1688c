package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// cmdDrain puts the running server of a config in maintenance (drain) or
// takes it out (undrain), through its API with the config's credentials,
// and waits until the cameras have moved: handed to the buddies the
// planner picks, make-before-break, or back home the same way.
func cmdDrain(name string, on bool) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		wait := fs.Duration("wait", time.Minute, "how long to wait for the cameras to move (0: do not wait)")
		cfg, code := loadConfig(fs, args, stderr)
		if cfg == nil {
			return code
		}
		a, err := newServerAPI(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "buddyrec %s: %v\n", name, err)
			return 1
		}
		defer a.client.CloseIdleConnections()
		path := "/api/v1/undrain"
		if on {
			path = "/api/v1/drain"
		}
		ctx, cancel := context.WithTimeout(context.Background(), *wait+30*time.Second)
		defer cancel()
		var m api.Maintenance
		if err := a.postJSON(ctx, path, nil, &m); err != nil {
			fmt.Fprintf(stderr, "buddyrec %s: %s (%s): %v\n", name, cfg.Name, cfg.File, err)
			return 1
		}
		if on {
			fmt.Fprintf(stdout, "%s: in maintenance; handing its cameras to its buddies (make-before-break)\n", m.Server)
		} else {
			fmt.Fprintf(stdout, "%s: maintenance ended; taking its cameras back (make-before-break)\n", m.Server)
		}
		deadline := time.Now().Add(*wait)
		for !m.Complete && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			if err := a.getJSON(ctx, "/api/v1/drain", &m); err != nil {
				fmt.Fprintf(stderr, "buddyrec %s: %v\n", name, err)
				return 1
			}
		}
		if *wait == 0 {
			return 0
		}
		if !m.Complete {
			fmt.Fprintf(stderr, "buddyrec %s: the cameras have not all moved after %s; see the status page and the event log\n", name, *wait)
			printMaintenance(stdout, m)
			return 1
		}
		printMaintenance(stdout, m)
		return 0
	}
}

// printMaintenance prints where each camera went and what stayed.
func printMaintenance(w io.Writer, m api.Maintenance) {
	if !m.Maintenance {
		fmt.Fprintf(w, "%s records its cameras again\n", m.Server)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA\tRECORDED BY")
	for _, id := range slices.Sorted(maps.Keys(m.Moved)) {
		fmt.Fprintf(tw, "%s\t%s\n", id, m.Moved[id])
	}
	for _, id := range m.Kept {
		fmt.Fprintf(tw, "%s\t%s (kept: no other server has room)\n", id, m.Server)
	}
	for _, id := range m.Unplaced {
		fmt.Fprintf(tw, "%s\tnobody\n", id)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d moved, %d kept on %s", len(m.Moved), len(m.Kept), m.Server)
	if len(m.Unplaced) > 0 {
		fmt.Fprintf(w, ", %d unrecorded: %s", len(m.Unplaced), strings.Join(m.Unplaced, ", "))
	}
	fmt.Fprintln(w)
}
