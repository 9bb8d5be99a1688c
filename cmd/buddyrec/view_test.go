package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/internal/site"
	"github.com/buddyrec/buddyrec/internal/testutil"
)

// videoState is what the view page's <video> element and script report.
type videoState struct {
	CurrentTime float64 `json:"currentTime"`
	Width       int     `json:"videoWidth"`
	Height      int     `json:"videoHeight"`
	Mode        string  `json:"mode"`
	MIME        string  `json:"mime"`
	Error       string  `json:"error"`
	Inits       int     `json:"inits"`
	Reconnects  int     `json:"reconnects"`
}

const videoStateJS = `(() => { const v = document.getElementById("video"); const s = window.viewState || {};
  return {currentTime: v.currentTime, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
    mode: s.mode, mime: s.mime, error: s.error || (v.error ? "video: " + v.error.message : ""), inits: s.inits, reconnects: s.reconnects}; })()`

func readVideo(ctx context.Context) (videoState, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[videoState](videoStateJS))
}

// playsPast waits until the page's video has played past t seconds.
func playsPast(ctx context.Context, t *testing.T, what string, past float64, timeout time.Duration) videoState {
	t.Helper()
	var st videoState
	eventually(t, timeout, func() string {
		var err error
		if st, err = readVideo(ctx); err != nil {
			return err.Error()
		}
		if st.Error != "" {
			return fmt.Sprintf("%s: %s", what, st.Error)
		}
		if st.CurrentTime <= past {
			return fmt.Sprintf("%s: currentTime %.2f, want > %.2f (%+v)", what, st.CurrentTime, past, st)
		}
		return ""
	})
	return st
}

func screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 makes a PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	testutil.SaveArtifact(t, name, png)
}

// TestBrowserView plays cameras in a real Chromium: the live view of a
// camera recorded by another server (relayed), kept playing across that
// recorder's kill -9 while the buddy adopts the camera; and the recorded
// view of a time 10 s ago.
func TestBrowserView(t *testing.T) {
	ctx := testutil.Browser(t, 3*time.Minute)
	c := startCameras(t, 2, nil)
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{
		{Name: "rec-a", Cameras: cams(c, 1, 1), Buddies: []string{"rec-b"}, NoFailback: true},
		{Name: "rec-b", Cameras: cams(c, 2, 2), Buddies: []string{"rec-a"}},
	}})
	a, b := s.Server("rec-a"), s.Server("rec-b")
	eventually(t, 20*time.Second, all(recordsExactly(a, "rec-a/cam1"), recordsExactly(b, "rec-b/cam2"), sees(b, "rec-a", "alive"), sees(a, "rec-b", "alive")))

	// live, on the server that does not record the camera: relayed from rec-a
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+b.HTTP+"/view?camera=rec-a/cam1")); err != nil {
		t.Fatal(err)
	}
	st := playsPast(ctx, t, "live view on rec-b of rec-a/cam1", 3, 30*time.Second)
	t.Logf("live view playing after %v: %+v", time.Since(start).Round(time.Millisecond), st)
	if st.Width != 1280 || st.Height != 720 {
		t.Errorf("videoWidth×videoHeight = %d×%d, want the camera's 1280×720", st.Width, st.Height)
	}
	if st.Mode != "live" {
		t.Errorf("mode %q, want live", st.Mode)
	}
	screenshot(ctx, t, "view-live-relayed.png")

	// RTSP live from the server that does not record the camera: relayed too
	ffprobe := testutil.NeedTool(t, "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-rw_timeout", "10000000", "-rtsp_transport", "tcp",
		"-show_entries", "stream=codec_name,width", "-of", "csv=p=0", "rtsp://"+b.RTSP+"/rec-a/cam1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264,1280") {
		t.Errorf("ffprobe of rec-a/cam1 on rec-b's RTSP: %v\n%s", err, out)
	}

	// the recorder dies; rec-b adopts the camera and the view follows it
	before, err := readVideo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Kill()
	eventually(t, 15*time.Second, recordsExactly(b, "rec-a/cam1", "rec-b/cam2"))
	after := playsPast(ctx, t, "live view after rec-a's kill -9", before.CurrentTime+3, 30*time.Second)
	if after.Reconnects != 0 {
		t.Errorf("the page reconnected %d times: the view should follow the camera without it", after.Reconnects)
	}
	if after.Inits < 2 {
		t.Errorf("the page saw %d streams, want the new recorder's too", after.Inits)
	}
	screenshot(ctx, t, "view-live-after-failover.png")

	// recorded: 10 s ago, from the export of the site
	at := time.Now().Add(-10 * time.Second).UTC().Format(time.RFC3339)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+b.HTTP+"/view?camera=rec-b/cam2&at="+at)); err != nil {
		t.Fatal(err)
	}
	rec := playsPast(ctx, t, "recorded view 10 s ago", 2, 30*time.Second)
	if rec.Mode != "recorded" || rec.Width != 1280 {
		t.Errorf("recorded view: %+v", rec)
	}
	screenshot(ctx, t, "view-recorded.png")
}

// TestBrowserViewH265: a camera the browser may not decode (H.265 in a
// Chromium without a decoder for it) is never a black box: the view either
// plays it or says so and offers the MP4 download.
func TestBrowserViewH265(t *testing.T) {
	ctx := testutil.Browser(t, 2*time.Minute)
	cams := testutil.Cameras(t, camsim.Options{Cameras: 1, Codec: "h265"})
	s := startSite(t, site.Spec{Servers: []site.ServerSpec{{Name: "rec-a", Cameras: []site.Camera{{Name: "cam1", URL: cams.URL(1)}}}}})
	a := s.Server("rec-a")
	eventually(t, 20*time.Second, recordsExactly(a, "rec-a/cam1"))
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+a.HTTP+"/view?camera=rec-a/cam1")); err != nil {
		t.Fatal(err)
	}
	var st videoState
	eventually(t, 30*time.Second, func() string {
		var err error
		if st, err = readVideo(ctx); err != nil {
			return err.Error()
		}
		if strings.HasPrefix(st.Error, "unsupported") || st.CurrentTime > 2 {
			return ""
		}
		return fmt.Sprintf("neither playing nor saying it cannot: %+v", st)
	})
	if strings.HasPrefix(st.Error, "unsupported") {
		type shown struct {
			Text, Href string
			Hidden     bool
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[shown](`({text: document.getElementById("unsupported-text").textContent,
			href: document.getElementById("download").href, hidden: document.getElementById("unsupported").hidden})`))
		if err != nil {
			t.Fatal(err)
		}
		if got.Hidden || !strings.Contains(got.Text, "H.265") || !strings.Contains(got.Href, "/api/v1/export?camera=rec-a%2Fcam1") {
			t.Errorf("unsupported notice: %+v", got)
		}
		t.Logf("Chromium here cannot decode H.265: the view says so (%q)", got.Text)
	} else {
		t.Logf("Chromium here plays H.265: %+v", st)
	}
	screenshot(ctx, t, "view-h265.png")
}
