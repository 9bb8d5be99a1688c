package main

import (
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
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "folder for configs, recordings and logs (default: a new temporary folder)")
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
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "buddyrec-demo-"); err != nil {
			fmt.Fprintln(stderr, "buddyrec demo:", err)
			return 1
		}
	}
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
	fmt.Fprintf(stdout, "Watch a failover: kill -9 %d   (rec-a; rec-b and rec-c adopt its cameras)\n", s.Server("rec-a").Pid())
	restart := bin
	if strings.Contains(bin, "go-build") {
		restart = "go run ./cmd/buddyrec" // started with go run: its binary is temporary
	}
	fmt.Fprintf(stdout, "Then restart it:   %s run -config %s\n", restart, s.Server("rec-a").Config)
	fmt.Fprintf(stdout, "Stop the demo with Ctrl-C.\n\n")

	if *chaos {
		go demoChaos(ctx, s, *chaosEvery, stdout)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the demo site")
	return 0
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
