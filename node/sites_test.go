package node

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/failover"
)

// loadSite loads every server config of an example site in testdata/sites.
func loadSite(t *testing.T, site string) map[string]*config.Config {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "sites", site, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs for site %s: %v", site, err)
	}
	out := map[string]*config.Config{}
	for _, f := range files {
		c, err := config.Load(f)
		if err != nil {
			t.Fatalf("example config %s does not pass check:\n%v", f, err)
		}
		out[c.Name] = c
	}
	return out
}

// planSite plans an example site with the named servers dead, feeding the
// plan back as claims until it settles, as the running servers do.
func planSite(t *testing.T, cfgs map[string]*config.Config, dead ...string) failover.Plan {
	t.Helper()
	isDead := map[string]bool{}
	for _, d := range dead {
		isDead[d] = true
	}
	var plan failover.Plan
	for round := 0; round < 3; round++ {
		records, alive := map[string]control.Record{}, map[string]bool{}
		for _, name := range sortedKeys(cfgs) {
			r := publicRecord(cfgs[name], time.Time{})
			r.Stable = true
			r.Claims = plan.For(name)
			records[name], alive[name] = r.rulesRecord(0), !isDead[name]
		}
		plan = failover.Compute(control.PlanInput(records, alive))
	}
	return plan
}

func owners(p failover.Plan, server string) []string {
	out := p.For(server)
	sort.Strings(out)
	return out
}

func TestExampleSites(t *testing.T) {
	t.Run("mirrored", func(t *testing.T) {
		site := loadSite(t, "mirrored")
		p := planSite(t, site, "rec-a")
		if got := owners(p, "rec-b"); len(got) != 3 {
			t.Errorf("rec-b records %v, want all 3 cameras of rec-a", got)
		}
	})
	t.Run("spread-servers", func(t *testing.T) {
		site := loadSite(t, "spread-servers")
		p := planSite(t, site, "rec-a", "rec-b")
		got := owners(p, "rec-s")
		if len(got) != 5 {
			t.Fatalf("standby records %v, want 5 (its capacity)", got)
		}
		// The three critical cameras are placed first.
		for _, crit := range []string{"rec-a/lobby", "rec-a/gate", "rec-b/hall"} {
			if p.Owner[crit] != "rec-s" {
				t.Errorf("critical camera %s not on the standby", crit)
			}
		}
		if len(p.Unplaced) != 3 {
			t.Errorf("unplaced = %v, want the 3 cameras over capacity", p.Unplaced)
		}
	})
	t.Run("spread-cameras", func(t *testing.T) {
		site := loadSite(t, "spread-cameras")
		p := planSite(t, site, "rec-b")
		got := owners(p, "rec-a")
		want := []string{"rec-a/dock", "rec-a/gate", "rec-a/lobby", "rec-b/hall", "rec-b/lab"}
		if len(got) != len(want) {
			t.Fatalf("rec-a records %v, want %v (its own + rec-b's critical)", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("rec-a records %v, want %v", got, want)
			}
		}
	})
	t.Run("n-plus-2", func(t *testing.T) {
		site := loadSite(t, "n-plus-2")
		p := planSite(t, site, "rec-a")
		if p.Owner["rec-a/lobby"] != "rec-b" {
			t.Errorf("with rec-a dead, lobby is on %q, want rec-b", p.Owner["rec-a/lobby"])
		}
		p = planSite(t, site, "rec-a", "rec-b")
		for _, cam := range []string{"rec-a/lobby", "rec-a/dock", "rec-b/hall"} {
			if p.Owner[cam] != "rec-c" {
				t.Errorf("with rec-a and rec-b dead, %s is on %q, want rec-c", cam, p.Owner[cam])
			}
		}
	})
}
