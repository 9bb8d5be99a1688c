package buddy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDetect measures how long the survivors of a cluster with the
// default timing take to report a crashed peer dead. Run with
//
//	go test -run '^$' -bench BenchmarkDetect -benchtime 5x ./buddy/
//
// detect-s is the mean over iterations of the time until every survivor
// reports the peer dead; max-detect-s is the worst iteration.
func BenchmarkDetect(b *testing.B) {
	for _, n := range []int{2, 3, 4} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var total, worst time.Duration
			for i := 0; i < b.N; i++ {
				d := measureDetection(b, n)
				total += d
				worst = max(worst, d)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "detect-s")
			b.ReportMetric(worst.Seconds(), "max-detect-s")
		})
	}
}

func measureDetection(b *testing.B, n int) time.Duration {
	b.Helper()
	sink := newLogSink(b)
	var nodes []*Cluster
	defer func() {
		for _, c := range nodes {
			_ = c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		o := testOpts(b, sink, fmt.Sprintf("n%d", i))
		if i > 0 {
			o.Join = []string{nodes[0].Addr()}
		}
		c, err := Start(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, c)
	}
	victim := nodes[n-1]
	waitFor(b, 10*time.Second, "victim alive everywhere", allState(nodes, victim.Name(), StateAlive))
	time.Sleep(time.Duration(n) * DefaultKeepalive) // let probes settle
	crash(victim)
	return waitFor(b, 20*time.Second, "victim dead", allState(nodes[:n-1], victim.Name(), StateDead))
}

// TestHelperNode is not a test: TestHungPeer runs the test binary again
// with BUDDY_HELPER_NODE set so that it can SIGSTOP a real process.
func TestHelperNode(t *testing.T) {
	if os.Getenv("BUDDY_HELPER_NODE") == "" {
		t.Skip("helper process for TestHungPeer")
	}
	c, err := Start(context.Background(), Options{
		Name:     os.Getenv("BUDDY_HELPER_NODE"),
		BindAddr: "127.0.0.1:0",
		Join:     []string{os.Getenv("BUDDY_HELPER_JOIN")},
		Key:      testKey,
	})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", c.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	_ = c.Close()
}

func TestHungPeer(t *testing.T) {
	sink := newLogSink(t)
	a := startNode(t, testOpts(t, sink, "a"))
	b := startNode(t, testOpts(t, sink, "b", a.Addr()))

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNode$")
	cmd.Env = append(os.Environ(), "BUDDY_HELPER_NODE=hung", "BUDDY_HELPER_JOIN="+a.Addr())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "ADDR ") {
			t.Fatalf("helper said %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not start")
	}
	both := []*Cluster{a, b}
	waitFor(t, 5*time.Second, "hung alive", allState(both, "hung", StateAlive))
	time.Sleep(3 * DefaultKeepalive)

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 10*time.Second, "stopped peer dead", allState(both, "hung", StateDead))
	t.Logf("SIGSTOPped peer declared dead by all in %s", took)
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 10*time.Second, "resumed peer alive", allState(both, "hung", StateAlive))
	t.Logf("resumed peer alive again at all in %s", took)
}
