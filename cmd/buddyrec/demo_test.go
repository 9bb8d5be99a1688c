package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoRun is a `buddyrec demo` process driven through its prompt.
type demoRun struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   strings.Builder
	done  chan struct{}
}

func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	d := &demoRun{t: t, done: make(chan struct{})}
	d.cmd = exec.Command(testBin, append([]string{"demo", "-clips", "../../testdata"}, args...)...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.cmd.Stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
		d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", d.output())
		}
	})
	return d
}

func (d *demoRun) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// await waits for a line matching re and returns its submatches.
func (d *demoRun) await(re string, timeout time.Duration) []string {
	d.t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	eventually(d.t, timeout, func() string {
		if m = rx.FindStringSubmatch(d.output()); m == nil {
			return "demo never printed " + re
		}
		return ""
	})
	return m
}

func (d *demoRun) send(line string) {
	d.t.Helper()
	if _, err := io.WriteString(d.stdin, line+"\n"); err != nil {
		d.t.Fatal(err)
	}
}

func (d *demoRun) exitCode(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		d.t.Fatalf("demo still running after %s", timeout)
		return -1
	}
}

func healthy(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func processGone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// TestDemoRestartsWhatItKilledAndCleansUp: the demo's own prompt crashes
// and restarts a server; the restarted server is the demo's child and ends
// with it, and the demo's folder is removed on quit.
func TestDemoRestartsWhatItKilledAndCleansUp(t *testing.T) {
	d := startDemo(t)
	m := d.await(`(?m)^  rec-a +status http://([0-9.:]+)/ .* pid (\d+)$`, 60*time.Second)
	addrA, _ := m[1], m[2]
	dir := d.await(`(?m)^  files +(\S+) \(`, 10*time.Second)[1]
	d.await(`Watch a failover`, 10*time.Second)
	eventually(t, 30*time.Second, func() string {
		if !healthy(addrA) {
			return "rec-a not answering"
		}
		return ""
	})

	d.send("kill rec-a")
	d.await(`kill -9 rec-a \(pid \d+\)`, 10*time.Second)
	if healthy(addrA) {
		t.Fatal("rec-a still answers after kill")
	}
	d.send("restart rec-a")
	pid, _ := strconv.Atoi(d.await(`restarted rec-a \(pid (\d+)\)`, 10*time.Second)[1])
	eventually(t, 30*time.Second, func() string {
		if !healthy(addrA) {
			return "restarted rec-a not answering"
		}
		return ""
	})
	d.send("status")
	d.await(`(?m)^  rec-b +pid \d+, records `, 10*time.Second)

	d.send("quit")
	if code := d.exitCode(60 * time.Second); code != 0 {
		t.Errorf("demo exit %d", code)
	}
	if !processGone(pid) {
		t.Errorf("restarted rec-a (pid %d) outlived the demo", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("demo folder %s after quit: %v", dir, err)
	}
	if !strings.Contains(d.output(), "removed "+dir) {
		t.Error("demo did not say it removed its folder")
	}
}

// TestDemoNoticesAnOutsideKillAndKeepsItsFolder: a kill -9 from another
// terminal is noticed and answered with the restart hint; -keep keeps the
// folder.
func TestDemoNoticesAnOutsideKillAndKeepsItsFolder(t *testing.T) {
	d := startDemo(t, "-keep")
	pid, _ := strconv.Atoi(d.await(`(?m)^  rec-b +status http://[0-9.:]+/ .* pid (\d+)$`, 60*time.Second)[1])
	dir := d.await(`(?m)^  files +(\S+) \(`, 10*time.Second)[1]
	t.Cleanup(func() { os.RemoveAll(dir) })
	d.await(`Watch a failover`, 10*time.Second)
	syscall.Kill(pid, syscall.SIGKILL)
	d.await(`rec-b \(pid `+strconv.Itoa(pid)+`\) has exited; type  restart rec-b`, 10*time.Second)
	d.send("restart rec-b")
	d.await(`restarted rec-b \(pid \d+\)`, 10*time.Second)
	d.stdin.Close() // stdin at its end: the demo keeps running
	time.Sleep(time.Second)
	select {
	case <-d.done:
		t.Fatal("demo ended when its stdin did")
	default:
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	if code := d.exitCode(60 * time.Second); code != 0 {
		t.Errorf("demo exit %d after Ctrl-C", code)
	}
	if _, err := os.Stat(dir + "/rec-a.toml"); err != nil {
		t.Errorf("-keep: %v", err)
	}
}
