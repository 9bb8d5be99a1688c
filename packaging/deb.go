package packaging

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/buildinfo"
)

//go:embed files
var shipped embed.FS

// Paths on the installed system.
const (
	BinPath    = "/usr/bin/buddyrec"
	UnitPath   = "/usr/lib/systemd/system/buddyrec.service"
	ConfigDir  = "/etc/buddyrec"
	ConfigPath = "/etc/buddyrec/buddyrec.toml"
	DataDir    = "/var/lib/buddyrec"
	DocDir     = "/usr/share/doc/buddyrec"
)

// Options say what to build.
type Options struct {
	// ModuleRoot is the repository's root (holding go.mod).
	ModuleRoot string
	// OutDir receives the .deb (created if missing).
	OutDir string
	// Arch is the Go architecture to build for; default runtime.GOARCH.
	Arch string
	// Version overrides the package version; default: derived from the
	// built binary's module version (see buildinfo.Info.DebianVersion).
	Version string
	// Now stamps the build time; default time.Now.
	Now time.Time
}

// Result describes a built package.
type Result struct {
	Path    string // the .deb
	Version string // its Debian version
	Build   buildinfo.Info
}

// Build compiles ./cmd/buddyrec for linux/Arch with VCS stamping and the
// build time, then writes the .deb into OutDir.
func Build(ctx context.Context, o Options) (Result, error) {
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	work, err := os.MkdirTemp("", "buddyrec-package-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(work)

	bin := filepath.Join(work, "buddyrec")
	stamps := gitStamps(ctx, o.ModuleRoot)
	stamps.BuildTime = o.Now.UTC().Format(time.RFC3339)
	// -buildvcs=auto: GOFLAGS may turn stamping off, and a package must
	// say which commit it holds (Go's own stamp wins where it has one; the
	// git facts cover worktrees, which Go does not recognise).
	// -trimpath: no build machine paths inside.
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=auto", "-trimpath",
		"-ldflags", "-s -w "+stamps.LDFlags(), "-o", bin, "./cmd/buddyrec")
	cmd.Dir = o.ModuleRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+o.Arch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Result{}, fmt.Errorf("go build ./cmd/buddyrec: %v\n%s", err, out)
	}
	bi, err := buildinfo.ReadFile(bin, stamps)
	if err != nil {
		return Result{}, err
	}
	version := o.Version
	if version == "" {
		version = bi.DebianVersion()
	}

	// The shipped files are embedded; nfpm reads sources from disk.
	if err := fs.WalkDir(shipped, "files", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := shipped.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(work, d.Name()), b, 0o644)
	}); err != nil {
		return Result{}, fmt.Errorf("unpack shipped files: %w", err)
	}
	// The example config is config's reference file, the one that documents
	// every key: one source for the loader's tests, README and package.
	if err := os.WriteFile(filepath.Join(work, "buddyrec.toml"), []byte(config.Reference), 0o644); err != nil {
		return Result{}, fmt.Errorf("write example config: %w", err)
	}
	readme := filepath.Join(o.ModuleRoot, "README.md")

	mtime := o.Now.UTC().Truncate(time.Second)
	info := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}
	}
	pkg := &nfpm.Info{
		Name:          "buddyrec",
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // already a Debian version
		Section:       "video",
		Priority:      "optional",
		Maintainer:    "buddyrec developers <buddyrec@localhost>",
		Homepage:      "https://github.com/buddyrec/buddyrec",
		License:       "proprietary",
		Description: "video recorder for IP cameras that fails over to its buddies\n" +
			"Each recording server records its own cameras over RTSP into fMP4 segment\n" +
			"files and gossips with the servers it names as buddies; when one dies, a\n" +
			"buddy adopts its cameras within seconds and tells the site's PSIM.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			// The maintainer scripts create the user with adduser, else useradd.
			Depends:    []string{"adduser | passwd"},
			Recommends: []string{"systemd"},
			Suggests:   []string{"ffmpeg"},
			Contents: files.Contents{
				{Source: bin, Destination: BinPath, FileInfo: info(0o755)},
				{Source: filepath.Join(work, "buddyrec.service"), Destination: UnitPath, FileInfo: info(0o644)},
				{Destination: ConfigDir, Type: files.TypeDir, FileInfo: info(0o750)},
				// noreplace: an upgrade never overwrites the installer's edits.
				{Source: filepath.Join(work, "buddyrec.toml"), Destination: ConfigPath, Type: files.TypeConfigNoReplace, FileInfo: info(0o640)},
				{Source: readme, Destination: DocDir + "/README.md", FileInfo: info(0o644)},
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(work, "postinst"),
				PreRemove:   filepath.Join(work, "prerm"),
				PostRemove:  filepath.Join(work, "postrm"),
			},
		},
	}
	pkg = nfpm.WithDefaults(pkg)
	if err := nfpm.PrepareForPackager(pkg, "deb"); err != nil {
		return Result{}, fmt.Errorf("package: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return Result{}, err
	}
	out := filepath.Join(o.OutDir, packager.ConventionalFileName(pkg))
	f, err := os.Create(out)
	if err != nil {
		return Result{}, err
	}
	if err := packager.Package(pkg, f); err != nil {
		f.Close()
		os.Remove(out)
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return Result{}, err
	}
	return Result{Path: out, Version: version, Build: bi}, nil
}

// gitStamps asks git which commit the tree is at, when it can; a tree
// without git (a source tarball) gets none and the version says "dev".
func gitStamps(ctx context.Context, root string) buildinfo.Stamps {
	git := func(args ...string) (string, bool) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err == nil
	}
	var s buildinfo.Stamps
	rev, ok := git("rev-parse", "HEAD")
	if !ok || len(rev) < 40 {
		return s
	}
	s.Commit = rev
	if t, ok := git("log", "-1", "--format=%cI", "HEAD"); ok {
		if ct, err := time.Parse(time.RFC3339, t); err == nil {
			s.CommitTime = ct.UTC().Format(time.RFC3339)
		}
	}
	s.Dirty = "false"
	if st, ok := git("status", "--porcelain"); ok && st != "" {
		s.Dirty = "true"
	}
	return s
}
