package api

import (
	"fmt"
	"sort"
	"strings"
)

// StandbySummary says which standby sessions the server holds, per home
// and mode, as the status page shows it: "standby for 2 cameras of rec-a
// (hot)"; "" when it holds none.
func (c Cameras) StandbySummary() string {
	count := map[string]int{}
	for _, s := range c.Standby {
		count[s.Home+" ("+s.Standby+")"]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		noun := "cameras"
		if count[k] == 1 {
			noun = "camera"
		}
		parts = append(parts, fmt.Sprintf("%d %s of %s", count[k], noun, k))
	}
	if len(parts) == 0 {
		return ""
	}
	return "standby for " + strings.Join(parts, ", ")
}
