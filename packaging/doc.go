// Package packaging builds buddyrec's Debian package: the binary, its
// systemd unit, an example /etc/buddyrec/buddyrec.toml (a conffile) and
// the maintainer scripts that create the buddyrec system user and the data
// folder. `go run ./cmd/buddyrec-package -o dist/` is the one command.
//
// The .deb is written by goreleaser/nfpm used as a library, so it builds on
// any machine Go runs on, without dpkg-deb. The files it ships live beside
// this file in files/ and are embedded, except the example config, which is
// config.Reference (config/buddyrec.toml, the file that documents every key):
// what the tests check is what ships.
//
// Invariants the tests hold it to:
//   - the config is a conffile, root:buddyrec 0640 after configure (it names
//     camera passwords); /var/lib/buddyrec is buddyrec:buddyrec 0750;
//   - the unit passes systemd-analyze verify;
//   - the packaged binary's `buddyrec version` names the commit it was
//     built from, and the package version derives from the same.
package packaging
