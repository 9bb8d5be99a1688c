package api

import "time"

// Maintenance is the body of GET /api/v1/drain and of the answers to POST
// /api/v1/drain and /api/v1/undrain: where the server's maintenance (a
// drain) stands.
type Maintenance struct {
	Server string `json:"server"`
	// Maintenance: the server is in maintenance (drained or draining).
	// It survives a restart (data_dir/maintenance.json).
	Maintenance bool `json:"maintenance"`
	// Stopping: the server drains because it is stopping (SIGTERM or a
	// restart); not persisted.
	Stopping bool       `json:"stopping,omitempty"`
	Since    *time.Time `json:"since,omitempty"`
	// By is who asked for the maintenance (the page's user, "api", or
	// "signal").
	By string `json:"by,omitempty"`
	// Complete: in maintenance, every camera that can move has been
	// handed over; after an undrain, every camera is back home.
	Complete bool `json:"complete"`
	// Moved maps the cameras the server recorded when the drain began,
	// and that others record now, to the server recording them.
	Moved map[string]string `json:"moved,omitempty"`
	// Kept are the cameras it still records: no other server has room.
	Kept []string `json:"kept,omitempty"`
	// Unplaced are cameras it recorded that nobody records now.
	Unplaced []string `json:"unplaced,omitempty"`
}
