package api

import (
	"fmt"
	"sort"
	"strings"

	"github.com/buddyrec/buddyrec/camera"
)

// PlanPreview is the body of GET /api/v1/plan?fail=rec-a[,rec-b]: where
// every camera of the site would be recorded if the named servers failed
// now, computed by the same planner, from the same gossiped records, that
// decides for real.
type PlanPreview struct {
	// Fail lists the servers assumed failed, sorted.
	Fail []string `json:"fail"`
	// Cameras lists every placed camera of the site, sorted by id.
	Cameras []PlannedCamera `json:"cameras"`
	// Unplaced lists the ids of the cameras nobody would record, sorted.
	Unplaced []string `json:"unplaced"`
}

// PlannedCamera is where one camera would be recorded.
type PlannedCamera struct {
	ID     string `json:"id"` // "home/name"
	Server string `json:"server"`
}

// IfFails summarises a preview for one failed server, as the status page
// shows it: how many of its cameras each buddy takes, and how many nobody
// records.
type IfFails struct {
	Server string `json:"server"`
	// To maps an adopting server to the number of cameras it would take.
	To map[string]int `json:"to"`
	// Unplaced counts the server's cameras nobody would record.
	Unplaced int `json:"unplaced"`
}

// IfFails counts where the cameras of server go in the preview.
func (p PlanPreview) IfFails(server string) IfFails {
	f := IfFails{Server: server, To: map[string]int{}}
	for _, c := range p.Cameras {
		if camera.HomeOf(c.ID) == server {
			f.To[c.Server]++
		}
	}
	for _, id := range p.Unplaced {
		if camera.HomeOf(id) == server {
			f.Unplaced++
		}
	}
	return f
}

// String reads "6 → rec-b, 2 → rec-c, 1 not recorded": the largest share
// first, ties by name.
func (f IfFails) String() string {
	names := make([]string, 0, len(f.To))
	for name := range f.To {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if f.To[names[i]] != f.To[names[j]] {
			return f.To[names[i]] > f.To[names[j]]
		}
		return names[i] < names[j]
	})
	var parts []string
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%d → %s", f.To[name], name))
	}
	if f.Unplaced > 0 {
		parts = append(parts, fmt.Sprintf("%d not recorded", f.Unplaced))
	}
	if len(parts) == 0 {
		return "no cameras to move"
	}
	return strings.Join(parts, ", ")
}
