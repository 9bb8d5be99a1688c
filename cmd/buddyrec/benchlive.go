package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
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
	dir, err := os.MkdirTemp("", "buddyrec-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cams, urls, bin, err := benchEnv(ctx, 1, *clips, "h264")
	if err != nil {
		return err
	}
	defer cams.Close()
	spec := site.ServerSpec{Name: "live", Cameras: []site.Camera{{Name: "cam1", URL: urls[0]}},
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
	return nil
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
