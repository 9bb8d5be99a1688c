package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/pion/rtp"

	"github.com/buddyrec/buddyrec/internal/site"
)

// benchLive measures what live viewers cost the server that re-streams: the
// server's CPU over a period with no viewer, then with N viewers reading
// the same camera (viewers run in this process, TCP on loopback).
func benchLive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench live", flag.ContinueOnError)
	fs.SetOutput(stderr)
	viewers := fs.Int("viewers", 20, "live viewers of one camera")
	dur := fs.Duration("duration", 20*time.Second, "measurement period, each for 0 and N viewers")
	clips := fs.String("clips", "testdata", "folder with the camera clips")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := newBenchEnv(ctx, 1, *clips, "h264", false)
	if err != nil {
		return err
	}
	defer env.Close()
	dir, bin := env.dir, env.bin
	spec := site.ServerSpec{Name: "live", Cameras: env.cameras(),
		Extra: fmt.Sprintf("[capacity]\nviewers = %d\n", *viewers+1)}
	s, err := site.New(site.Spec{Dir: dir, Bin: bin, Servers: []site.ServerSpec{spec}, Insecure: true})
	if err != nil {
		return err
	}
	srv := s.Servers[0]
	if err := stripCluster(srv.Config); err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Stop(10 * time.Second)
	if err := waitRecording(ctx, srv, 1, 30*time.Second); err != nil {
		return err
	}
	measure := func() time.Duration {
		c0 := procCPU(srv.Pid())
		select {
		case <-ctx.Done():
		case <-time.After(*dur):
		}
		return procCPU(srv.Pid()) - c0
	}
	idle := measure()

	var packets atomic.Int64
	url := "rtsp://" + srv.RTSP + "/live/cam1"
	var clients []*gortsplib.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < *viewers; i++ {
		c, err := playRTSP(url, func() { packets.Add(1) })
		if err != nil {
			return fmt.Errorf("viewer %d: %w", i+1, err)
		}
		clients = append(clients, c)
	}
	time.Sleep(2 * time.Second)
	p0 := packets.Load()
	busy := measure()
	got := packets.Load() - p0
	per := (busy - idle).Seconds() / float64(*viewers)
	fmt.Fprintf(stdout, "server CPU, 1 camera recorded: %.1f%% of one core with no viewer, %.1f%% with %d viewers\n",
		100*idle.Seconds()/dur.Seconds(), 100*busy.Seconds()/dur.Seconds(), *viewers)
	fmt.Fprintf(stdout, "live fan-out: %.2f%% of one core per viewer (%.3f CPU-s per viewer-minute); %d RTP packets delivered to viewers\n",
		100*per/dur.Seconds(), per/dur.Minutes(), got)
	for _, c := range clients {
		c.Close()
	}
	clients = nil
	time.Sleep(time.Second)

	// the same with browser viewers: fMP4 over WebSocket
	wsURL := "ws://" + srv.HTTP + "/view/ws?camera=live/cam1"
	var msgs atomic.Int64
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	for i := 0; i < *viewers; i++ {
		c, _, err := websocket.Dial(wctx, wsURL, nil)
		if err != nil {
			return fmt.Errorf("browser viewer %d: %w", i+1, err)
		}
		c.SetReadLimit(-1)
		go func() {
			defer c.CloseNow()
			for {
				if _, _, err := c.Read(wctx); err != nil {
					return
				}
				msgs.Add(1)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	m0 := msgs.Load()
	wbusy := measure()
	wcancel()
	wper := (wbusy - idle).Seconds() / float64(*viewers)
	fmt.Fprintf(stdout, "browser fan-out: %.1f%% of one core with %d browser viewers, %.2f%% per viewer (%.3f CPU-s per viewer-minute); %d fMP4 fragments delivered\n",
		100*wbusy.Seconds()/dur.Seconds(), *viewers, 100*wper/dur.Seconds(), wper/dur.Minutes(), msgs.Load()-m0)

	// time to the first frame: the server side (WebSocket opened → first
	// keyframe fragment received), and in Chromium when it is installed
	// (page opened → first frame composited)
	var firsts []time.Duration
	for i := 0; i < 10; i++ {
		d, err := firstFragment(ctx, wsURL)
		if err != nil {
			return err
		}
		firsts = append(firsts, d)
		time.Sleep(300 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "first keyframe fragment over WebSocket: median %s, max %s (10 opens; GOP cache)\n", ms(median(secs(firsts))), ms(maxOf(secs(firsts))))
	if shown, err := browserFirstFrame(ctx, "http://"+srv.HTTP+"/view?camera=live/cam1", 5); err != nil {
		fmt.Fprintf(stdout, "first frame shown in Chromium: not measured (%v)\n", err)
	} else {
		fmt.Fprintf(stdout, "first frame shown in Chromium: median %s, max %s (5 page loads, from navigation start)\n", ms(median(secs(shown))), ms(maxOf(secs(shown))))
	}
	return nil
}

// firstFragment opens a browser viewer's WebSocket and times the arrival of
// the first media fragment (the init and the cached GOP come first).
func firstFragment(ctx context.Context, url string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return 0, err
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	binaries := 0
	for {
		typ, _, err := c.Read(ctx)
		if err != nil {
			return 0, err
		}
		if typ == websocket.MessageBinary {
			if binaries++; binaries == 2 { // init segment, then the first fragment
				return time.Since(start), nil
			}
		}
	}
}

// browserFirstFrame loads the view page n times in headless Chromium and
// reads how long each took to show its first frame.
func browserFirstFrame(ctx context.Context, url string, n int) ([]time.Duration, error) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return nil, errors.New("chromium not installed")
	}
	dir, err := os.MkdirTemp("", "buddyrec-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("autoplay-policy", "no-user-gesture-required"), chromedp.UserDataDir(dir))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
			return nil, err
		}
		time.Sleep(300 * time.Millisecond)
		if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			ms, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`(window.viewState && window.viewState.firstFrameMs) || 0`))
			if err != nil {
				return nil, err
			}
			if ms > 0 {
				out = append(out, time.Duration(ms*float64(time.Millisecond)))
				break
			}
			if time.Now().After(deadline) {
				return nil, errors.New("no frame shown within 15 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out, nil
}

// playRTSP starts a viewer that counts every RTP packet it reads.
func playRTSP(rawURL string, onPacket func()) (*gortsplib.Client, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		return nil, err
	}
	desc, _, err := c.Describe(u)
	if err == nil {
		err = c.SetupAll(desc.BaseURL, desc.Medias)
	}
	if err == nil {
		c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { onPacket() })
		_, err = c.Play(nil)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func ms(s float64) string { return fmt.Sprintf("%.0f ms", s*1000) }
