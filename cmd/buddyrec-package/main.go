// Command buddyrec-package builds buddyrec's Debian package from the
// repository:
//
//	go run ./cmd/buddyrec-package -o dist/
//
// It compiles ./cmd/buddyrec for linux (stamped with the commit and the
// build time) and writes dist/buddyrec_<version>_<arch>.deb holding the
// binary, the systemd unit, the example /etc/buddyrec/buddyrec.toml and
// the scripts that create the buddyrec user. Run it from the repository.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/packaging"
)

func main() {
	out := flag.String("o", "dist", "folder for the .deb")
	arch := flag.String("arch", "", "Go architecture to build for (amd64, arm64, ...); default: this machine's")
	version := flag.String("version", "", "package version; default: derived from the commit (a tag gives 1.2.3)")
	flag.Parse()
	root, err := site.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "buddyrec-package: run it inside the repository:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := packaging.Build(ctx, packaging.Options{ModuleRoot: root, OutDir: *out, Arch: *arch, Version: *version})
	if err != nil {
		fmt.Fprintln(os.Stderr, "buddyrec-package:", err)
		os.Exit(1)
	}
	fmt.Printf("%s\n  version %s, commit %s\n", res.Path, res.Version, res.Build.ShortCommit())
}
