package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestUsageNamesEveryCommand: the usage text lists each command that run
// dispatches and no other (a command may take adjacent lines, as check does, but is listed in one
// place);
// bench lists every benchmark.
func TestUsageNamesEveryCommand(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var dispatched []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "run" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok {
						// "worker" is hidden: the supervisor starts it, nobody types it.
						if s, err := strconv.Unquote(lit.Value); err == nil && !strings.HasPrefix(s, "-") && s != "help" && s != "worker" {
							dispatched = append(dispatched, s)
						}
					}
				}
			}
			return true
		})
		return false
	})
	if len(dispatched) < 5 {
		t.Fatalf("found only %v in run's switch", dispatched)
	}
	var listed []string
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  "); ok && rest != "" && rest[0] != ' ' {
			cmd := strings.Fields(rest)[0]
			if slices.Contains(listed, cmd) && listed[len(listed)-1] != cmd {
				t.Errorf("usage lists %q in two places", cmd)
			}
			listed = append(listed, cmd)
		}
	}
	slices.Sort(dispatched)
	slices.Sort(listed)
	listed = slices.Compact(listed)
	if !slices.Equal(dispatched, listed) {
		t.Errorf("usage lists %v, run dispatches %v", listed, dispatched)
	}
	for _, b := range benchmarks() {
		if !strings.Contains(usage, b.name) {
			t.Errorf("usage does not name bench %s", b.name)
		}
	}
}
