package config

import (
	"errors"
	"strings"
	"testing"
)

// TestFailoverStandby: [failover] standby defaults to "cold", takes "hot"
// and "mirror", and names the line of anything else.
func TestFailoverStandby(t *testing.T) {
	c, err := Load(writeConfig(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Failover.Standby != StandbyCold {
		t.Errorf("default standby = %q, want %q", c.Failover.Standby, StandbyCold)
	}
	for _, mode := range []string{StandbyHot, StandbyMirror} {
		src := strings.Replace(good, "cameras = \"critical\"\n", "cameras = \"critical\"\nstandby = \""+mode+"\"\n", 1)
		c, err := Load(writeConfig(t, src))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if c.Failover.Standby != mode {
			t.Errorf("standby = %q, want %q", c.Failover.Standby, mode)
		}
	}
	src := strings.Replace(good, "cameras = \"critical\"\n", "cameras = \"critical\"\nstandby = \"warm\"\n", 1)
	_, err = Load(writeConfig(t, src))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	line := strings.Count(src[:strings.Index(src, "standby =")], "\n") + 1
	found := false
	for _, p := range ps {
		found = found || (p.Line == line && strings.Contains(p.String(), `failover.standby: must be "cold", "hot" or "mirror", not "warm"`))
	}
	if !found {
		t.Errorf("want failover.standby problem at line %d, got %v", line, ps)
	}
}
