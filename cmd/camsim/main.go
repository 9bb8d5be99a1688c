// Command camsim serves synthetic RTSP cameras that loop a test clip in real
// time, with optional faults, for tests, demos and benchmarks.
//
//	camsim -listen 127.0.0.1:8554 -cameras 4 -codec h264
//	camsim -cameras 3 -fault-cameras 2,3 -drop-after 5s
//	camsim -cameras 1 -jump-every 8s -jump-by -20s          # a clock that steps back
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "camsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen address")
	cameras := fs.Int("cameras", 1, "number of cameras (paths cam1..camN)")
	clip := fs.String("clip", "", "MPEG-TS clip to loop (default: testdata clip for -codec)")
	codec := fs.String("codec", "h264", "default clip codec: h264 (with AAC) or h265")
	clipDir := fs.String("clip-dir", "testdata", "directory holding the default clips")
	dropAfter := fs.Duration("drop-after", 0, "close each connection after this long")
	stallAfter := fs.Duration("stall-after", 0, "stop sending after this long, keeping the connection")
	garbage := fs.Bool("garbage", false, "mix undecodable payloads and junk NAL units into the stream")
	user := fs.String("user", "", "require this user name")
	pass := fs.String("pass", "", "require this password")
	faultCams := fs.String("fault-cameras", "", "comma-separated camera numbers the fault flags apply to (default all)")
	jumpEvery := fs.Duration("jump-every", 0, "step the camera clock by -jump-by this often")
	jumpBy := fs.Duration("jump-by", 0, "clock step for -jump-every (negative steps back)")
	dups := fs.Int("duplicates", 0, "after each clock jump, send this many video frames twice")
	udp := fs.Bool("udp", false, "also offer UDP transport on RTSP port+1 and +2")
	maxSessions := fs.Int("max-sessions", 0, "serve at most this many sessions per camera at once, refusing more with 453 (0: no limit)")
	verbose := fs.Bool("v", false, "log connection events")
	if err := fs.Parse(args); err != nil {
		return err
	}

	fault := camsim.Fault{DropAfter: *dropAfter, StallAfter: *stallAfter, Garbage: *garbage, User: *user, Pass: *pass,
		JumpEvery: *jumpEvery, JumpBy: *jumpBy, Duplicates: *dups, MaxSessions: *maxSessions}
	faults := map[int]camsim.Fault{}
	if fault != (camsim.Fault{}) {
		nums, err := parseCameras(*faultCams, *cameras)
		if err != nil {
			return err
		}
		for _, n := range nums {
			faults[n] = fault
		}
	}
	opts := camsim.Options{Listen: *listen, Cameras: *cameras, Clip: *clip, Codec: *codec, ClipDir: *clipDir, Faults: faults}
	if *udp {
		host, port, err := net.SplitHostPort(*listen)
		if err != nil {
			return fmt.Errorf("-listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p == 0 {
			return fmt.Errorf("-udp needs a fixed -listen port")
		}
		opts.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(p+1))
		opts.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(p+2))
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := camsim.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	for i := 1; i <= *cameras; i++ {
		fmt.Println(redact(srv.URL(i)))
	}
	<-ctx.Done()
	shutdown := time.AfterFunc(5*time.Second, func() { os.Exit(1) })
	srv.Close()
	shutdown.Stop()
	return nil
}

// parseCameras parses "2,3" into camera numbers; empty means all.
func parseCameras(s string, n int) ([]int, error) {
	if s == "" {
		all := make([]int, n)
		for i := range all {
			all[i] = i + 1
		}
		return all, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > n {
			return nil, fmt.Errorf("-fault-cameras: %q is not a camera number in 1..%d", f, n)
		}
		out = append(out, v)
	}
	return out, nil
}

// redact hides passwords in printed URLs.
func redact(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			if k := strings.Index(s[j+3:i], ":"); k >= 0 {
				return s[:j+3+k+1] + "xxxxx" + s[i:]
			}
		}
	}
	return s
}
