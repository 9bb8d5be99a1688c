package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/buddyrec/buddyrec/config"
)

// cmdCheck validates one config (-config FILE, or a single file), or
// several, and then the site they make together: `check a.toml b.toml
// c.toml`, or `check site/` for every *.toml in a folder.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	one := fs.String("config", "", "path of one server's TOML config")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var paths []string
	if *one != "" {
		paths = append(paths, *one)
	}
	for _, a := range fs.Args() {
		fi, err := os.Stat(a)
		if err != nil || !fi.IsDir() {
			paths = append(paths, a) // Load reports a missing file
			continue
		}
		found, _ := filepath.Glob(filepath.Join(a, "*.toml"))
		if len(found) == 0 {
			fmt.Fprintf(stderr, "buddyrec check: no *.toml in %s\n", a)
			return 1
		}
		sort.Strings(found)
		paths = append(paths, found...)
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "usage: buddyrec check -config FILE | buddyrec check FILE... | DIR")
		return 2
	}

	var cfgs []*config.Config
	bad := 0
	for _, path := range paths {
		cfg, err := config.Load(path)
		if err != nil {
			bad++
			var ps config.Problems
			if errors.As(err, &ps) {
				for _, p := range ps {
					fmt.Fprintln(stderr, p)
				}
				fmt.Fprintf(stderr, "%d problem(s) in %s\n", len(ps), path)
			} else {
				fmt.Fprintln(stderr, err)
			}
			continue
		}
		cfgs = append(cfgs, cfg)
	}
	if len(paths) == 1 {
		if bad > 0 {
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK\n%s", cfgs[0].File, cfgs[0].Summary())
		return 0
	}
	for _, c := range cfgs {
		fmt.Fprintf(stdout, "%s: OK (server %s, %d camera(s))\n", c.File, c.Name, len(c.Cameras))
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%d of %d config(s) have problems: fix them, then the site is checked\n", bad, len(paths))
		return 1
	}

	r := config.CheckSite(cfgs)
	names := make([]string, len(cfgs))
	for i, c := range cfgs {
		names[i] = c.Name
	}
	key := "gossip key " + r.KeyFingerprint + " on every server"
	if r.KeyFingerprint == "" {
		key = "no common gossip key"
	}
	fmt.Fprintf(stdout, "\nsite of %d server(s) %v, %s\n", len(cfgs), names, key)
	for _, f := range r.Failures {
		fmt.Fprintf(stdout, "  if %s fails: %s\n", f.Server, f)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(stderr, p)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(stderr, "%d problem(s) in the site\n", len(r.Problems))
		return 1
	}
	fmt.Fprintf(stdout, "site: OK, %d warning(s)\n", len(r.Warnings))
	return 0
}
