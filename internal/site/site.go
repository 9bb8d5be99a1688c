// Package site writes the configs of a local buddyrec site and runs its
// servers as child processes. The demo, the benchmarks and the process tests
// share it, so that what a newcomer watches is what the tests prove.
package site

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/recorder"
)

// Camera is one camera of a server's spec.
type Camera struct {
	Name     string
	URL      string
	Critical bool
	// Transport is the [[camera]] transport key; empty leaves the
	// product's default (tcp). A VLC camera serves "udp" only.
	Transport string
}

// ServerSpec describes one server of the site.
type ServerSpec struct {
	Name          string
	Cameras       []Camera
	Buddies       []string
	Mode          string // "all" (default) or "critical"
	Capacity      int    // cameras, 0 = unlimited
	NoFailback    bool
	FailbackAfter string // default "5s"
	DrainTimeout  string // [cluster] drain_timeout; default the product's (15s)
	Extra         string // appended verbatim to the config
	Standby       string // [failover] standby: "cold" (default), "hot" or "mirror"
	// Storage is appended verbatim to the [storage] table, e.g.
	// "backfill_mbps = 4\n".
	Storage string

	// Host, when set, is the IP this server binds instead of Spec.Host,
	// e.g. its address inside a network namespace; its ports are then not
	// probed (nothing else listens in a fresh namespace).
	Host string
	// Exec prefixes the server's command line, e.g. ["ip", "netns", "exec",
	// "ns1"] to run it inside a network namespace.
	Exec []string
	// Args are appended to the server's `run` command line, e.g.
	// ["-pprof", "127.0.0.1:6060"] for a benchmark that profiles it.
	Args []string
}

// Spec describes a site.
type Spec struct {
	Dir      string // where configs, data and logs go
	Bin      string // the buddyrec binary
	Host     string // loopback IP to bind; default 127.0.0.1
	Servers  []ServerSpec
	Segment  string // default "10s"
	Part     string // default "1s"
	PSIMURL  string // optional webhook receiver
	Insecure bool   // plaintext gossip
	// Keepalive and FailoverAfter default to the product's defaults.
	Keepalive, FailoverAfter string
	// User and Password, when set, go into a users_file for every server,
	// and the helpers below authenticate with them.
	User, Password string
}

// Server is one server process of a Site.
type Server struct {
	Name    string
	Config  string
	DataDir string
	Log     string
	HTTP    string
	Gossip  string
	RTSP    string

	bin        string
	exec       []string
	args       []string
	user, pass string
	mu         sync.Mutex
	cmd        *exec.Cmd
	out        *os.File
}

// Site is a set of configured servers.
type Site struct {
	Spec       Spec
	Servers    []*Server
	KeyFile    string
	SecretFile string
	Secret     string
	UsersFile  string // when Spec.User is set
}

// FreePort returns a port free for both TCP and UDP on host (memberlist
// needs both).
func FreePort(host string) (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, fmt.Sprint(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free tcp+udp port on %s", host)
}

// New writes the key, secret and every server's config under spec.Dir.
func New(spec Spec) (*Site, error) {
	if spec.Host == "" {
		spec.Host = "127.0.0.1"
	}
	if spec.Segment == "" {
		spec.Segment = "10s"
	}
	if spec.Part == "" {
		spec.Part = "1s"
	}
	s := &Site{Spec: spec}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	s.KeyFile = filepath.Join(spec.Dir, "gossip.key")
	if err := os.WriteFile(s.KeyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	rand.Read(key)
	s.Secret = "whsec_" + base64.StdEncoding.EncodeToString(key)
	s.SecretFile = filepath.Join(spec.Dir, "psim.secret")
	if err := os.WriteFile(s.SecretFile, []byte(s.Secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	if spec.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(spec.Password), 10)
		if err != nil {
			return nil, err
		}
		s.UsersFile = filepath.Join(spec.Dir, "users")
		if err := os.WriteFile(s.UsersFile, []byte(spec.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	var gossips []string
	// A port is free when probed and closed again, so the kernel may hand
	// it out again: no two listeners of the site may get the same one.
	taken := map[string]bool{}
	for _, ss := range spec.Servers {
		srv := &Server{Name: ss.Name, bin: spec.Bin, exec: ss.Exec, args: ss.Args, user: spec.User, pass: spec.Password}
		host, probe := spec.Host, spec.Host
		if ss.Host != "" {
			host, probe = ss.Host, "127.0.0.1"
		}
		ports := make([]int, 3)
		for i := range ports {
			for tries := 0; ; tries++ {
				p, err := FreePort(probe)
				if err != nil {
					return nil, err
				}
				if k := net.JoinHostPort(host, fmt.Sprint(p)); !taken[k] {
					taken[k] = true
					ports[i] = p
					break
				}
				if tries == 50 {
					return nil, fmt.Errorf("no free port on %s not already given to this site", probe)
				}
			}
		}
		srv.HTTP = net.JoinHostPort(host, fmt.Sprint(ports[0]))
		srv.Gossip = net.JoinHostPort(host, fmt.Sprint(ports[1]))
		srv.RTSP = net.JoinHostPort(host, fmt.Sprint(ports[2]))
		srv.DataDir = filepath.Join(spec.Dir, ss.Name, "data")
		srv.Config = filepath.Join(spec.Dir, ss.Name+".toml")
		srv.Log = filepath.Join(spec.Dir, ss.Name+".log")
		gossips = append(gossips, srv.Gossip)
		s.Servers = append(s.Servers, srv)
	}
	for i, ss := range spec.Servers {
		if err := os.WriteFile(s.Servers[i].Config, []byte(s.config(ss, s.Servers[i], gossips)), 0o600); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (s *Site) config(ss ServerSpec, srv *Server, gossips []string) string {
	var join []string
	for _, g := range gossips {
		if g != srv.Gossip {
			join = append(join, g)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name = %q\ndata_dir = %q\n\n[listen]\nhttp = %q\ngossip = %q\nrtsp = %q\n\n", ss.Name, srv.DataDir, srv.HTTP, srv.Gossip, srv.RTSP)
	if s.UsersFile != "" {
		fmt.Fprintf(&b, "[http]\nusers_file = %q\n\n", s.UsersFile)
	}
	fmt.Fprintf(&b, "[cluster]\njoin = %s\n", quoteList(join))
	if s.Spec.Insecure {
		b.WriteString("insecure = true\n")
	} else {
		fmt.Fprintf(&b, "key_file = %q\n", s.KeyFile)
	}
	if s.Spec.Keepalive != "" {
		fmt.Fprintf(&b, "keepalive = %q\n", s.Spec.Keepalive)
	}
	if s.Spec.FailoverAfter != "" {
		fmt.Fprintf(&b, "failover_after = %q\n", s.Spec.FailoverAfter)
	}
	fa := ss.FailbackAfter
	if fa == "" {
		fa = "5s"
	}
	if ss.DrainTimeout != "" {
		fmt.Fprintf(&b, "drain_timeout = %q\n", ss.DrainTimeout)
	}
	fmt.Fprintf(&b, "failback = %v\nfailback_after = %q\n\n", !ss.NoFailback, fa)
	if ss.Capacity > 0 {
		fmt.Fprintf(&b, "[capacity]\ncameras = %d\n\n", ss.Capacity)
	}
	mode := ss.Mode
	if mode == "" {
		mode = "all"
	}
	fmt.Fprintf(&b, "[failover]\nbuddies = %s\ncameras = %q\n", quoteList(ss.Buddies), mode)
	if ss.Standby != "" {
		fmt.Fprintf(&b, "standby = %q\n", ss.Standby)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[storage]\nsegment = %q\npart = %q\n%s\n", s.Spec.Segment, s.Spec.Part, ss.Storage)
	for _, c := range ss.Cameras {
		fmt.Fprintf(&b, "[[camera]]\nname = %q\nurl = %q\ncritical = %v\n", c.Name, c.URL, c.Critical)
		if c.Transport != "" {
			fmt.Fprintf(&b, "transport = %q\n", c.Transport)
		}
		b.WriteString("\n")
	}
	if s.Spec.PSIMURL != "" {
		fmt.Fprintf(&b, "[[psim]]\nurl = %q\nsecret_file = %q\n\n", s.Spec.PSIMURL, s.SecretFile)
	}
	b.WriteString(ss.Extra)
	return b.String()
}

// Server returns the server with that name, or nil.
func (s *Site) Server(name string) *Server {
	for _, srv := range s.Servers {
		if srv.Name == name {
			return srv
		}
	}
	return nil
}

// StartAll starts every server.
func (s *Site) StartAll() error {
	for _, srv := range s.Servers {
		if err := srv.Start(); err != nil {
			return err
		}
	}
	return nil
}

// StopAll stops every running server gracefully (SIGTERM, then SIGKILL).
func (s *Site) StopAll() {
	var wg sync.WaitGroup
	for _, srv := range s.Servers {
		wg.Add(1)
		go func() { defer wg.Done(); srv.Stop(10 * time.Second) }()
	}
	wg.Wait()
}

// Start runs the server process, appending its log to srv.Log.
func (srv *Server) Start() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cmd != nil {
		return fmt.Errorf("server %s already running", srv.Name)
	}
	out, err := os.OpenFile(srv.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append(append([]string(nil), srv.exec...), srv.bin, "run", "-config", srv.Config)
	args = append(args, srv.args...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", srv.Name, err)
	}
	srv.cmd, srv.out = cmd, out
	return nil
}

// Running tells whether the process was started and not yet reaped.
func (srv *Server) Running() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.cmd != nil
}

// Pid is the process id, or 0.
func (srv *Server) Pid() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cmd == nil {
		return 0
	}
	return srv.cmd.Process.Pid
}

// Kill is the death of the whole server, as from a power cut: the
// supervisor process and every worker process it started (which run in
// their own session and would otherwise go on recording) are killed -9
// and the supervisor is reaped. KillSupervisor kills the supervisor alone.
func (srv *Server) Kill() {
	srv.KillSupervisor()
	srv.KillWorkers()
}

// KillSupervisor sends SIGKILL to the server process only (a crash of
// the supervisor) and reaps it; its worker processes, if any, go on.
func (srv *Server) KillSupervisor() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cmd == nil {
		return
	}
	srv.cmd.Process.Signal(syscall.SIGCONT)
	srv.cmd.Process.Kill()
	srv.cmd.Wait()
	srv.out.Close()
	srv.cmd, srv.out = nil, nil
}

// KillWorkers kills -9 every worker process of this server's data_dir
// that is still running, found by the pid files its supervisor wrote
// beside the workers' sockets (data_dir/workers/wN.pid); a pid is killed
// only when its command line names this data_dir, so a recycled pid is
// left alone. It returns how many it killed.
func (srv *Server) KillWorkers() int {
	pids, _ := filepath.Glob(filepath.Join(srv.DataDir, "workers", "w*.pid"))
	killed := 0
	for _, p := range pids {
		b, _ := os.ReadFile(p)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 {
			continue
		}
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), srv.DataDir) {
			syscall.Kill(pid, syscall.SIGCONT) //nolint:errcheck // a stopped worker dies all the same
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	return killed
}

// Signal sends sig (e.g. SIGSTOP to simulate a hung server, SIGCONT).
func (srv *Server) Signal(sig syscall.Signal) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cmd == nil {
		return fmt.Errorf("server %s not running", srv.Name)
	}
	return srv.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to grace before killing.
func (srv *Server) Stop(grace time.Duration) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cmd == nil {
		return
	}
	srv.cmd.Process.Signal(syscall.SIGCONT)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { srv.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		srv.cmd.Process.Kill()
		<-done
	}
	srv.out.Close()
	srv.cmd, srv.out = nil, nil
	// A clean stop stops the workers; these are what a stop that had to
	// be cut short left behind.
	srv.KillWorkers()
}

// GetJSON fetches http://srv.HTTP+path into v, giving up after 2 s: the
// polls of eventually try again.
func (srv *Server) GetJSON(ctx context.Context, path string, v any) error {
	return srv.GetJSONWithin(ctx, 2*time.Second, path, v)
}

// GetJSONWithin is GetJSON giving up after d: for a call that must be
// answered, on a machine the test itself loads.
func (srv *Server) GetJSONWithin(ctx context.Context, d time.Duration, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+srv.HTTP+path, nil)
	if err != nil {
		return err
	}
	if srv.user != "" {
		req.SetBasicAuth(srv.user, srv.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Cameras returns the server's cameras as its API reports them.
func (srv *Server) Cameras(ctx context.Context) ([]api.CameraInfo, error) {
	var resp api.Cameras
	err := srv.GetJSON(ctx, "/api/v1/cameras", &resp)
	return resp.Cameras, err
}

// Cluster returns the site as the server sees it.
func (srv *Server) Cluster(ctx context.Context) ([]api.ServerInfo, error) {
	var resp api.Cluster
	err := srv.GetJSON(ctx, "/api/v1/cluster", &resp)
	return resp.Servers, err
}

// Recording returns the ids of cameras the server reports as recording.
func (srv *Server) Recording(ctx context.Context) (map[string]bool, error) {
	cams, err := srv.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range cams {
		if c.State == recorder.StateRecording {
			out[c.ID] = true
		}
	}
	return out, nil
}

// BuildBinary compiles ./cmd/buddyrec from the module root into dir.
func BuildBinary(ctx context.Context, moduleRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "buddyrec")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/buddyrec")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot walks up from the working directory to the folder holding
// go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Exited tells whether the server's process has ended on its own or was
// killed from outside (a `kill -9` typed in another terminal during the
// demo). It does not reap the process: Kill or Stop still do, after which
// Start may run it again.
func (srv *Server) Exited() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.cmd == nil {
		return false
	}
	var info unix.Siginfo
	// WNOWAIT: look, leave the zombie for cmd.Wait.
	if err := unix.Waitid(unix.P_PID, srv.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
		return false
	}
	// Linux zeroes info when the child is still running; an exited one
	// reports SIGCHLD.
	return info.Signo == int32(unix.SIGCHLD)
}

// Credentials are the user and password the helpers authenticate with
// ("" without Spec.User).
func (srv *Server) Credentials() (user, pass string) { return srv.user, srv.pass }
