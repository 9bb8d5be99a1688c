package api

// Reload is the body of POST /api/v1/reload's answer: what re-reading the
// config file did (200), or why it was refused (422).
type Reload struct {
	// Applied is false when the new config was refused; Problems says why,
	// one "file:line: key: message" each, never a secret.
	Applied  bool     `json:"applied"`
	Problems []string `json:"problems,omitempty"`
	// Summary names what changed ("" when nothing did), e.g. "cameras
	// added: yard; changed: capacity.cameras".
	Summary string `json:"summary,omitempty"`
	// Cameras (names on this server) added, removed, and restarted because
	// their URL, credentials or transport changed.
	Added     []string `json:"cameras_added,omitempty"`
	Removed   []string `json:"cameras_removed,omitempty"`
	Restarted []string `json:"cameras_restarted,omitempty"`
	// ConfigHash fingerprints the config in force after the request: the
	// new file's when applied, the running one's when refused.
	ConfigHash string `json:"config_hash"`
}
