package packaging

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// scratchRoot is an empty system for dpkg --root: a dpkg database and the
// account files useradd edits, holding root only.
func scratchRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		"var/lib/dpkg/status": "", "var/lib/dpkg/available": "",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n",
		"etc/shadow": "root:*:19000:0:99999:7:::\n", "etc/gshadow": "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func idOf(t *testing.T, root, file, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == name {
			id, _ := strconv.Atoi(f[2])
			return id
		}
	}
	t.Fatalf("no %s in %s/etc/%s:\n%s", name, root, file, b)
	return -1
}

func checkStat(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", path, fi.Mode().Perm(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// TestDebInstallsIntoAScratchRoot builds the package as an installer would
// (the same Build the command runs), reads its control fields, installs it
// with dpkg into an empty root (maintainer scripts included), checks the
// files, their owners and modes, the buddyrec user, the unit, the example
// config and the binary's version, then removes and purges it.
func TestDebInstallsIntoAScratchRoot(t *testing.T) {
	dpkg := testutil.NeedTool(t, "dpkg")
	testutil.NeedTool(t, "dpkg-deb")
	testutil.NeedTool(t, "useradd")
	if os.Geteuid() != 0 {
		if os.Getenv("BUDDYREC_REQUIRE_TOOLS") != "" {
			t.Fatal("installing into a scratch root needs root (BUDDYREC_REQUIRE_TOOLS is set)")
		}
		t.Skip("dpkg -i into a scratch root needs root")
	}
	modRoot, err := site.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := Build(ctx, Options{ModuleRoot: modRoot, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(res.Version) {
		t.Errorf("version %q is not a Debian version", res.Version)
	}
	if filepath.Base(res.Path) != fmt.Sprintf("buddyrec_%s_%s.deb", res.Version, "amd64") && strings.Contains(res.Path, "amd64") {
		t.Errorf("file name %s", res.Path)
	}

	// Control fields, conffiles, scripts.
	info := run(t, "dpkg-deb", "-I", res.Path)
	for _, want := range []string{"Package: buddyrec\n", "Version: " + res.Version + "\n", "Architecture: ", "Depends: adduser | passwd\n",
		"Maintainer: ", "Section: video\n", "Installed-Size: ", " postinst", " prerm", " postrm", " conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	if conf := run(t, "dpkg-deb", "-f", res.Path, "Package"); strings.TrimSpace(conf) != "buddyrec" {
		t.Errorf("Package field %q", conf)
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", res.Path, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(b)) != ConfigPath {
		t.Errorf("conffiles = %q, want %s", b, ConfigPath)
	}

	// Install into the scratch root; the scripts run with DPKG_ROOT.
	root := scratchRoot(t)
	dpkgIn := func(args ...string) string {
		return run(t, dpkg, append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"}, args...)...)
	}
	dpkgIn("-i", res.Path)
	if st := dpkgIn("-s", "buddyrec"); !strings.Contains(st, "Status: install ok installed") || !strings.Contains(st, ConfigPath) {
		t.Errorf("dpkg -s:\n%s", st)
	}
	uid, gid := idOf(t, root, "passwd", "buddyrec"), idOf(t, root, "group", "buddyrec")
	if uid <= 0 || uid >= 1000 || gid <= 0 || gid >= 1000 {
		t.Errorf("buddyrec is %d:%d, want a system user and group", uid, gid)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/passwd")); !strings.Contains(string(b), ":/var/lib/buddyrec:/usr/sbin/nologin\n") {
		t.Errorf("buddyrec's home or shell:\n%s", b)
	}
	checkStat(t, filepath.Join(root, BinPath), 0o755, 0, 0)
	checkStat(t, filepath.Join(root, UnitPath), 0o644, 0, 0)
	checkStat(t, filepath.Join(root, ConfigDir), 0o750, 0, gid)
	checkStat(t, filepath.Join(root, ConfigPath), 0o640, 0, gid)
	checkStat(t, filepath.Join(root, DataDir), 0o750, uid, gid)
	checkStat(t, filepath.Join(root, DocDir, "README.md"), 0o644, 0, 0)

	// The binary says which commit it is; the example config is valid.
	bin := filepath.Join(root, BinPath)
	ver := run(t, bin, "version")
	if want := "buddyrec "; !strings.HasPrefix(ver, want) || !strings.Contains(ver, "built at:   20") {
		t.Errorf("buddyrec version:\n%s", ver)
	}
	if head, err := exec.Command("git", "-C", modRoot, "rev-parse", "HEAD").Output(); err == nil {
		if c := strings.TrimSpace(string(head))[:12]; !strings.Contains(ver, "commit:     "+c) || !strings.Contains(res.Version, c) {
			t.Errorf("built at commit %s; version %s says:\n%s", c, res.Version, ver)
		}
	}
	if out := run(t, bin, "check", "-config", filepath.Join(root, ConfigPath)); !strings.Contains(out, ": OK\n") {
		t.Errorf("check of the shipped config:\n%s", out)
	}

	// The unit file: systemd reads every key (an unknown key or a missing
	// binary is reported), pointed at the installed binary.
	if analyze, ok := testutil.LookTool(t, "systemd-analyze"); ok {
		unit, err := os.ReadFile(filepath.Join(root, UnitPath))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		tmp := filepath.Join(dir, "buddyrec.service")
		os.WriteFile(tmp, []byte(strings.ReplaceAll(string(unit), BinPath, bin)), 0o644)
		out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, UnitPath))
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "RequiresMountsFor=/var/lib/buddyrec",
		"KillMode=process", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/buddyrec", "ProtectHome=yes",
		"PrivateTmp=yes", "CapabilityBoundingSet=\n", "LimitNOFILE=65536", "User=buddyrec", "WatchdogSec="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}

	// An installer's edit survives a reinstall (conffile, noreplace).
	edited := strings.Replace(string(mustRead(t, filepath.Join(root, ConfigPath))), `name     = "rec-a"`, `name     = "rec-q"`, 1)
	os.WriteFile(filepath.Join(root, ConfigPath), []byte(edited), 0o640)
	dpkgIn("--force-confold", "-i", res.Path)
	if !strings.Contains(string(mustRead(t, filepath.Join(root, ConfigPath))), `"rec-q"`) {
		t.Error("reinstall overwrote the edited config")
	}
	if n := strings.Count("\n"+string(mustRead(t, filepath.Join(root, "etc/passwd"))), "\nbuddyrec:"); n != 1 {
		t.Errorf("reinstall: %d buddyrec users", n)
	}

	// Remove keeps config and recordings; purge drops the config only.
	os.WriteFile(filepath.Join(root, DataDir, "index.db"), []byte("footage"), 0o600)
	dpkgIn("-r", "buddyrec")
	if _, err := os.Stat(filepath.Join(root, BinPath)); !os.IsNotExist(err) {
		t.Errorf("binary after remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ConfigPath)); err != nil {
		t.Errorf("config after remove: %v", err)
	}
	dpkgIn("-P", "buddyrec")
	if _, err := os.Stat(filepath.Join(root, ConfigPath)); !os.IsNotExist(err) {
		t.Errorf("config after purge: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, DataDir, "index.db")); err != nil {
		t.Errorf("recordings after purge: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShippedConfigDocumentsRealKeys: every commented-out key in the
// example config is one the loader knows, with a value it accepts; only
// the files it names are missing on a build machine. Keys documented with
// "no default" (set or absent, such as a camera password, which needs a
// user) stay commented.
func TestShippedConfigDocumentsRealKeys(t *testing.T) {
	keyLine := regexp.MustCompile(`(?m)^# (\[+[a-z_]+\]+|[a-z_]+ +=)(.*)$`)
	src := keyLine.ReplaceAllStringFunc(config.Reference, func(line string) string {
		if strings.Contains(line, "# no default") {
			return line
		}
		return keyLine.ReplaceAllString(line, "$1$2")
	})
	_, err := config.Parse("/etc/buddyrec/buddyrec.toml", src)
	ps, ok := err.(config.Problems)
	if !ok || len(ps) == 0 {
		t.Fatalf("the uncommented example parsed without the missing files? %v", err)
	}
	for _, p := range ps {
		if !strings.Contains(p.Msg, "no such file") && !strings.Contains(p.Msg, "cannot read") {
			t.Errorf("uncommented example: %s", p)
		}
	}
}
