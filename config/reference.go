package config

import _ "embed"

// Reference is buddyrec.toml, the one documented example of a config: every
// key the loader accepts, its meaning and its default. As it stands it is a
// valid standalone server with no cameras; packaging installs it as
// /etc/buddyrec/buddyrec.toml. Its tests hold it to the loader (keys and
// defaults) and README.md's configuration table to it.
//
//go:embed buddyrec.toml
var Reference string
