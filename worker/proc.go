package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/recorder"
)

// proc is one worker process as the supervisor sees it: started by this
// supervisor (cmd set) or attached after a supervisor restart.
type proc struct {
	id     int
	socket string
	pid    int
	cmd    *exec.Cmd // nil when attached
	// exited is closed once the process is gone (reaped, or no longer
	// present for an attached one).
	exited chan struct{}

	tr     *http.Transport
	api    *http.Client // heartbeat and commands: bounded by a timeout
	stream *http.Client // index long-polls and live frames

	version string
	// legacyStatus is set once the worker answered heartbeatRoute with
	// 404: a worker of an older release, asked GET /status instead.
	legacyStatus atomic.Bool

	// bodies holds the buffers answers are read into before they are
	// decoded (*bytes.Buffer), and hb the heartbeat's decoded form, both
	// kept from one answer to the next: the supervisor reads every
	// worker's heartbeat twice a second, and a json.Decoder made per
	// answer grows a fresh buffer and a fresh slice each time
	// (BenchmarkHeartbeatRead: 61 KB per 25-camera heartbeat before, 15
	// KB now; the supervisor's allocations at 250 cameras fell by a
	// fifth).
	bodies sync.Pool
	hbMu   sync.Mutex
	hb     []wireStatus
}

// maxKeptBody is the largest answer buffer kept for the next answer: a
// heartbeat of a few hundred cameras; a larger one (a stop's last index
// batch) is left to the collector.
const maxKeptBody = 1 << 20

// errNotFound marks a worker's 404: asked for heartbeatRoute, a worker
// of a release that does not serve it.
var errNotFound = errors.New("not found")

// base is the URL prefix of the worker's API (the host is ignored: every
// request goes to the Unix socket).
const base = "http://worker"

func newProc(id int, socket string) *proc {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &proc{
		id: id, socket: socket, exited: make(chan struct{}), tr: tr,
		api:    &http.Client{Transport: tr, Timeout: 2 * time.Second},
		stream: &http.Client{Transport: tr},
	}
}

func (p *proc) close() { p.tr.CloseIdleConnections() }

// alive reports whether the process has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill ends the process at once (SIGKILL): the way out of a hang.
func (p *proc) kill() {
	if p.pid > 0 && p.alive() {
		syscall.Kill(p.pid, syscall.SIGKILL) //nolint:errcheck // gone already is fine
	}
}

func (p *proc) getJSON(ctx context.Context, c *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	return p.do(c, req, v)
}

func (p *proc) do(c *http.Client, req *http.Request, v any) error {
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("worker %d: %w", p.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("worker %d: %s %s: %s: %s", p.id, req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", errNotFound, err)
		}
		return err
	}
	if v == nil {
		return nil
	}
	buf, _ := p.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxKeptBody {
			buf.Reset()
			p.bodies.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("worker %d: read %s: %w", p.id, req.URL.Path, err)
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fmt.Errorf("worker %d: decode %s: %w", p.id, req.URL.Path, err)
	}
	return nil
}

func (p *proc) hello(ctx context.Context) (Hello, error) {
	var h Hello
	err := p.getJSON(ctx, p.api, "/hello", &h)
	return h, err
}

// status asks the worker for its cameras' status: over heartbeatRoute,
// or GET /status from a worker of a release before it (an upgrade talks
// to the old workers until it has replaced them). The statuses are
// appended to buf[:0], so a caller that asks again and again can hand
// back the slice it was given.
func (p *proc) status(ctx context.Context, buf []recorder.Status) ([]recorder.Status, error) {
	if !p.legacyStatus.Load() {
		p.hbMu.Lock()
		defer p.hbMu.Unlock()
		// Unmarshal reuses the elements below cap as they are, and
		// leaves a field the answer omits (every zero one) as it was
		// in the previous heartbeat: they are zeroed first
		clear(p.hb[:cap(p.hb)])
		p.hb = p.hb[:0]
		err := p.getJSON(ctx, p.api, heartbeatRoute, &p.hb)
		if !errors.Is(err, errNotFound) {
			if err != nil {
				return nil, err
			}
			return readHeartbeat(buf[:0], p.hb), nil
		}
		p.legacyStatus.Store(true)
	}
	var st []recorder.Status
	err := p.getJSON(ctx, p.api, "/status", &st)
	return st, err
}

// setCameras tells the worker what to record. Credentials cross only the
// socket, which only this user can open.
func (p *proc) setCameras(ctx context.Context, cams []recorder.Camera) error {
	b, err := json.Marshal(cams)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/cameras", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	return p.do(p.stream, req, nil)
}

// index fetches the updates after seq (a long poll of up to a second).
func (p *proc) index(ctx context.Context, after uint64) (Batch, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b Batch
	err := p.getJSON(ctx, p.stream, "/index?after="+strconv.FormatUint(after, 10), &b)
	return b, err
}

// stop asks the worker to stop its cameras and returns its last updates.
func (p *proc) stop(ctx context.Context, after uint64) (Batch, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/stop?after="+strconv.FormatUint(after, 10), nil)
	if err != nil {
		return Batch{}, err
	}
	var b Batch
	err = p.do(p.stream, req, &b)
	return b, err
}

// sysmonPacing is the GODEBUG setting a worker runs with: a scheduler
// trace every 2^31-1 ms (24.8 days, one line in wN.log), which keeps the
// runtime's sysmon thread out of its deep sleep. A worker is idle between
// the ticks of its cameras' reads; sysmon sleeps deeply whenever the
// process is, and the first system call after it wakes sysmon to poll
// every 20 µs while the process works (golang/go#18236), dozens of
// wake-ups a tick. Kept awake it settles at one poll per 10 ms. bench
// record at 250 cameras in 10 workers: 0.119–0.131 CPU-s per
// camera-minute without it, 0.104–0.108 with it.
const sysmonPacing = "schedtrace=2147483647"

// workerEnv is the environment of a worker process: the supervisor's,
// with sysmonPacing added to GODEBUG unless it sets schedtrace itself.
func workerEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if !strings.Contains(v, "schedtrace=") {
				if v != "" {
					v += ","
				}
				kv = "GODEBUG=" + v + sysmonPacing
			}
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+sysmonPacing)
	}
	return out
}

// spawn starts a worker process of binary in its own session (so it
// outlives a kill -9 of the supervisor and its process group), logging to
// a file (a pipe would give it SIGPIPE once the supervisor is gone), and
// waits until its socket answers.
func spawn(ctx context.Context, binary, dir string, id int, extra ...string) (*proc, error) {
	socket := filepath.Join(dir, fmt.Sprintf("w%d.sock", id))
	logf, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("w%d.log", id)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("worker %d log: %w", id, err)
	}
	defer logf.Close()
	os.Remove(socket) //nolint:errcheck // a stale one would be mistaken for the new worker
	args := append([]string{"worker", "-id", strconv.Itoa(id), "-socket", socket}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = workerEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", id, err)
	}
	p := newProc(id, socket)
	p.cmd, p.pid = cmd, cmd.Process.Pid
	go func() { cmd.Wait(); close(p.exited) }()                       //nolint:errcheck // the exit is what matters
	os.WriteFile(pidFile(socket), []byte(strconv.Itoa(p.pid)), 0o600) //nolint:errcheck // only for a later supervisor's cleanup
	deadline := time.Now().Add(15 * time.Second)
	for {
		h, err := p.hello(ctx)
		if err == nil {
			if h.PID != p.pid {
				p.kill()
				return nil, fmt.Errorf("worker %d: socket answered for pid %d, started %d", id, h.PID, p.pid)
			}
			p.version = h.Version
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("worker %d exited at start (see %s): %s", id, logf.Name(), cmd.ProcessState)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("worker %d: socket did not answer within 15s", id)
		}
	}
}

func pidFile(socket string) string { return strings.TrimSuffix(socket, ".sock") + ".pid" }

// Found is a worker process left running by an earlier supervisor.
type Found struct {
	proc  *proc
	Hello Hello
}

// Discover finds the worker processes an earlier supervisor left running
// in dir (its sockets), so that a restarted supervisor takes them over
// instead of starting their cameras again. A worker whose socket does not
// answer (hung, stopped) is killed by the pid its supervisor noted; stale
// sockets are removed. Call it before opening storage: the cameras found
// must be left out of recovery (storage.Options.SkipRecovery).
func Discover(ctx context.Context, dir string) []Found {
	socks, _ := filepath.Glob(filepath.Join(dir, "w*.sock"))
	var out []Found
	for _, s := range socks {
		id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(s), "w"), ".sock"))
		if err != nil {
			continue
		}
		p := newProc(id, s)
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		h, err := p.hello(hctx)
		cancel()
		if err != nil {
			p.close()
			if pid := readPid(pidFile(s)); pid > 0 && isWorker(pid, s) {
				syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck
			}
			os.Remove(s)          //nolint:errcheck
			os.Remove(pidFile(s)) //nolint:errcheck
			continue
		}
		p.pid, p.version = h.PID, h.Version
		go watchPid(p)
		out = append(out, Found{proc: p, Hello: h})
	}
	return out
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// isWorker checks that pid is a worker of socket (not a recycled pid).
func isWorker(pid int, socket string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "worker") && strings.Contains(string(b), socket)
}

// watchPid closes p.exited once an attached process (not our child, so
// not waitable) is gone.
func watchPid(p *proc) {
	for {
		if err := syscall.Kill(p.pid, 0); errors.Is(err, syscall.ESRCH) || zombie(p.pid) {
			close(p.exited)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.state == 'Z'
}
