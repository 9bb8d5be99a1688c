package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/httpserver"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/webhook"
)

// demoSpec is the demo site: rec-a and rec-b record three cameras each and
// are each other's first buddy; rec-c is the standby for both. rec-a and
// rec-b may record four cameras, so a failed server's cameras spread over
// its live buddy (one) and the standby (the rest), critical ones first.
func demoSpec(dir, bin string, urls []string, psim string) site.Spec {
	cams := func(from int) []site.Camera {
		var out []site.Camera
		for i := from; i < from+3; i++ {
			out = append(out, site.Camera{Name: fmt.Sprintf("cam%d", i+1), URL: urls[i], Critical: i%3 == 0})
		}
		return out
	}
	return site.Spec{
		Dir: dir, Bin: bin, PSIMURL: psim,
		Servers: []site.ServerSpec{
			{Name: "rec-a", Cameras: cams(0), Buddies: []string{"rec-b", "rec-c"}, Capacity: 4, FailbackAfter: "10s"},
			{Name: "rec-b", Cameras: cams(3), Buddies: []string{"rec-a", "rec-c"}, Capacity: 4, FailbackAfter: "10s"},
			{Name: "rec-c", Capacity: 6},
		},
	}
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	return runDemo(args, os.Stdin, stdout, stderr)
}

// runDemo runs the demo site. Every server it starts, the ones restarted
// from its prompt included, is its child and ends with it; the folder it
// created goes too, unless -keep.
func runDemo(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "folder for configs, recordings and logs (default: a new temporary folder)")
	keep := fs.Bool("keep", false, "keep the folder (configs, logs, recordings) when the demo ends")
	chaos := fs.Bool("chaos", false, "kill -9 a server every so often and restart it, to watch failover and failback")
	chaosEvery := fs.Duration("chaos-every", 40*time.Second, "with -chaos: time between a restart and the next kill")
	clips := fs.String("clips", "testdata", "folder holding the camera clips (h264-aac.ts)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := os.Stat(filepath.Join(*clips, "h264-aac.ts")); err != nil {
		fmt.Fprintf(stderr, "buddyrec demo: camera clip not found in %s: run the demo from the repository root or pass -clips\n", *clips)
		return 1
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec demo:", err)
		return 1
	}
	// The demo removes only a folder it created: never one that held
	// something before it started.
	created := false
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "buddyrec-demo-"); err != nil {
			fmt.Fprintln(stderr, "buddyrec demo:", err)
			return 1
		}
		created = true
	} else if _, err := os.Stat(*dir); os.IsNotExist(err) {
		created = true
	}
	defer func() {
		switch {
		case *keep || !created:
			fmt.Fprintf(stdout, "kept %s (configs, logs, recordings)\n", *dir)
		default:
			if err := os.RemoveAll(*dir); err != nil {
				fmt.Fprintf(stderr, "buddyrec demo: remove %s: %v\n", *dir, err)
				return
			}
			fmt.Fprintf(stdout, "removed %s (run with -keep to keep configs, logs and recordings)\n", *dir)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cams, err := camsim.Start(ctx, camsim.Options{Listen: "127.0.0.1:0", Cameras: 6, ClipDir: *clips})
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec demo: cameras:", err)
		return 1
	}
	defer cams.Close()
	urls := make([]string, 6)
	for i := range urls {
		urls[i] = cams.URL(i + 1)
	}

	psimLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec demo:", err)
		return 1
	}
	s, err := site.New(demoSpec(*dir, bin, urls, "http://"+psimLn.Addr().String()+"/hooks/vms"))
	if err != nil {
		fmt.Fprintln(stderr, "buddyrec demo:", err)
		return 1
	}
	psim := httpserver.New(demoPSIM(s.Secret, stdout), nil)
	go psim.Serve(psimLn)
	defer psim.Close()

	if err := s.StartAll(); err != nil {
		fmt.Fprintln(stderr, "buddyrec demo:", err)
		s.StopAll()
		return 1
	}
	defer s.StopAll()

	fmt.Fprintf(stdout, "buddyrec demo: a site of 6 simulated cameras and 3 servers on loopback\n\n")
	fmt.Fprintf(stdout, "  cameras   rtsp://%s/cam1 .. cam6\n", cams.Addr())
	for _, srv := range s.Servers {
		fmt.Fprintf(stdout, "  %-6s    status http://%s/   api http://%s/api/v1/cluster   pid %d\n", srv.Name, srv.HTTP, srv.HTTP, srv.Pid())
	}
	fmt.Fprintf(stdout, "  PSIM      notices print below (signatures verified)\n")
	fmt.Fprintf(stdout, "  files     %s (configs, logs, recordings)\n\n", *dir)
	fmt.Fprint(stdout, demoHelp)
	fmt.Fprintf(stdout, "Watch a failover: type  kill rec-a  (or kill -9 %d from another terminal), then  restart rec-a\n\n", s.Server("rec-a").Pid())

	go demoWatch(ctx, s, stdout)
	if *chaos {
		go demoChaos(ctx, s, *chaosEvery, stdout)
	}
	quit := make(chan struct{})
	go demoPrompt(ctx, s, stdin, stdout, quit)
	select {
	case <-ctx.Done():
	case <-quit:
	}
	fmt.Fprintln(stdout, "\nstopping the demo site")
	return 0
}

const demoHelp = `Type a command and press Enter:
  kill rec-a      crash a server (kill -9): its buddies adopt its cameras
  stop rec-a      stop a server cleanly (SIGTERM)
  restart rec-a   start a crashed or stopped server again: its cameras fail back
  status          which server records which camera
  help            this list
  quit            stop the demo (or Ctrl-C)
`

// demoPrompt reads commands from stdin until quit or its end. A demo run
// without a terminal (stdin at EOF) just keeps running until Ctrl-C.
func demoPrompt(ctx context.Context, s *site.Site, stdin io.Reader, out io.Writer, quit chan<- struct{}) {
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		now := time.Now().Format("15:04:05")
		var srv *site.Server
		if len(f) > 1 {
			if srv = s.Server(f[1]); srv == nil {
				fmt.Fprintf(out, "%s no server %q (rec-a, rec-b, rec-c)\n", now, f[1])
				continue
			}
		}
		switch {
		case f[0] == "quit" || f[0] == "exit":
			close(quit)
			return
		case f[0] == "help":
			fmt.Fprint(out, demoHelp)
		case f[0] == "status":
			demoStatus(ctx, s, out)
		case srv == nil:
			fmt.Fprintf(out, "%s %q needs a server name: %s rec-a (type help)\n", now, f[0], f[0])
		case f[0] == "kill":
			if !srv.Running() || srv.Exited() {
				fmt.Fprintf(out, "%s %s is not running: restart %s\n", now, srv.Name, srv.Name)
				continue
			}
			pid := srv.Pid()
			srv.Kill()
			fmt.Fprintf(out, "%s kill -9 %s (pid %d): watch its buddies adopt its cameras; then  restart %s\n", now, srv.Name, pid, srv.Name)
		case f[0] == "stop":
			fmt.Fprintf(out, "%s stopping %s (SIGTERM)\n", now, srv.Name)
			srv.Stop(10 * time.Second)
			fmt.Fprintf(out, "%s %s stopped; restart %s to start it again\n", time.Now().Format("15:04:05"), srv.Name, srv.Name)
		case f[0] == "restart" || f[0] == "start":
			if srv.Running() && !srv.Exited() {
				fmt.Fprintf(out, "%s %s is running (pid %d); kill %s first\n", now, srv.Name, srv.Pid(), srv.Name)
				continue
			}
			srv.Kill() // reaps a process that died on its own or from outside
			if err := srv.Start(); err != nil {
				fmt.Fprintf(out, "%s restart %s: %v\n", now, srv.Name, err)
				continue
			}
			fmt.Fprintf(out, "%s restarted %s (pid %d): its cameras come back once it has been up for failback_after\n", now, srv.Name, srv.Pid())
		default:
			fmt.Fprintf(out, "%s unknown command %q (type help)\n", now, f[0])
		}
	}
}

// demoWatch reports a server that died without the prompt's doing (kill
// -9 from another terminal), so the newcomer knows how to bring it back.
func demoWatch(ctx context.Context, s *site.Site, out io.Writer) {
	told := map[string]int{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, srv := range s.Servers {
			if pid := srv.Pid(); pid != 0 && srv.Exited() && told[srv.Name] != pid {
				told[srv.Name] = pid
				fmt.Fprintf(out, "%s %s (pid %d) has exited; type  restart %s  to start it again\n", time.Now().Format("15:04:05"), srv.Name, pid, srv.Name)
			}
		}
	}
}

// demoStatus prints who records what, from each running server's API.
func demoStatus(ctx context.Context, s *site.Site, out io.Writer) {
	for _, srv := range s.Servers {
		if !srv.Running() || srv.Exited() {
			fmt.Fprintf(out, "  %-6s down\n", srv.Name)
			continue
		}
		rec, err := srv.Recording(ctx)
		if err != nil {
			fmt.Fprintf(out, "  %-6s pid %d, not answering yet: %v\n", srv.Name, srv.Pid(), err)
			continue
		}
		ids := make([]string, 0, len(rec))
		for id := range rec {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(out, "  %-6s pid %d, records %s\n", srv.Name, srv.Pid(), strings.Join(ids, " "))
	}
}

// demoChaos kills rec-a or rec-b in turn, then restarts it after a while.
func demoChaos(ctx context.Context, s *site.Site, every time.Duration, out io.Writer) {
	victims := []string{"rec-a", "rec-b"}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		v := s.Server(victims[i%2])
		fmt.Fprintf(out, "%s chaos: kill -9 %s (pid %d)\n", time.Now().Format("15:04:05"), v.Name, v.Pid())
		v.Kill()
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		fmt.Fprintf(out, "%s chaos: restarting %s\n", time.Now().Format("15:04:05"), v.Name)
		if err := v.Start(); err != nil {
			fmt.Fprintf(out, "chaos: restart %s: %v\n", v.Name, err)
		}
	}
}

// demoPSIM is a stand-in PSIM: it verifies each notice's signature and
// prints one line per notice.
func demoPSIM(secret string, out io.Writer) http.Handler {
	log := slog.New(slog.NewTextHandler(out, nil))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, 5*time.Minute); err != nil {
			log.Warn("PSIM: rejected a notice", "err", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var n webhook.Notice
		json.Unmarshal(body, &n)
		var cams []string
		for _, c := range n.Cameras {
			cams = append(cams, c.ID)
		}
		addr := ""
		if n.Address != nil {
			addr = n.Address.HTTP
		}
		fmt.Fprintf(out, "%s PSIM notice %-20s from %-6s failed=%-6s now at %s cameras=[%s] %s\n",
			time.Now().Format("15:04:05"), n.Type, n.Server, n.FailedServer, addr, strings.Join(cams, " "), n.Text)
		w.WriteHeader(http.StatusNoContent)
	})
}
