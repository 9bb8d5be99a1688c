package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// vlcUser is the account VLC runs under when the tests run as root: VLC
// refuses to run as root.
const vlcUser = "buddyrec-vlc"

// VLCCamera is a third-party RTSP camera: VLC (Debian's vlc-bin and
// vlc-plugin-base) looping a clip at rtsp://Addr/cam1. Its sessions use
// UDP transport only. Stop and Start take the camera off and back onto the
// network on the same address, as a camera that reboots does.
type VLCCamera struct {
	t    testing.TB
	bin  string
	dir  string
	clip string
	// Addr is the RTSP host:port.
	Addr string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
	// tracks is how many video and audio streams the clip holds: VLC's
	// SDP lists each only once its demuxer has found it.
	tracks int
}

// LongClip returns clip repeated times times over (ffmpeg, streams
// copied: the timestamps run on across each repeat) in a file of the
// test's. A VLC camera ends every RTSP session when its clip loops (it
// sends nothing more to them: a recorder sees a UDP timeout at the end of
// each pass), so a test whose sessions must outlive one pass of a short
// clip serves a long one. Without ffmpeg the test skips (fails with
// BUDDYREC_REQUIRE_TOOLS).
func LongClip(t testing.TB, clip string, times int) string {
	t.Helper()
	ffmpeg := NeedTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "long-"+filepath.Base(clip))
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-stream_loop", strconv.Itoa(times-1),
		"-i", clip, "-c", "copy", "-f", "mpegts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: repeat %s %d times: %v\n%s", clip, times, err, b)
	}
	return out
}

// StartVLC serves clip with cvlc on a free loopback port and waits until
// its SDP lists every video and audio stream of the clip. VLC ends its
// sessions at each loop of the clip (see LongClip). Without cvlc or
// ffprobe the test skips (fails with BUDDYREC_REQUIRE_TOOLS). As root it runs VLC as the system user
// buddyrec-vlc, creating it with useradd when it is missing.
func StartVLC(t testing.TB, clip string) *VLCCamera {
	t.Helper()
	bin := NeedTool(t, "cvlc")
	tracks := streamsOf(t, clip)
	// Not t.TempDir: its parent is private to the test's user, and VLC
	// runs as another.
	dir, err := os.MkdirTemp("", "buddyrec-vlc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &VLCCamera{t: t, bin: bin, dir: dir, tracks: tracks}
	if err := os.Chmod(v.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A copy VLC's user can read, wherever the checkout lives.
	b, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	v.clip = filepath.Join(v.dir, filepath.Base(clip))
	if err := os.WriteFile(v.clip, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		v.cred = vlcCredential(t)
		if err := os.Chown(v.dir, int(v.cred.Uid), int(v.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.Addr = l.Addr().String()
	l.Close()
	t.Cleanup(v.Stop)
	v.Start()
	return v
}

func vlcCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup(vlcUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", vlcUser).CombinedOutput()
		if err != nil {
			if u, err2 := user.Lookup(vlcUser); err2 == nil { // created meanwhile by a parallel test
				return credOf(t, u)
			}
			t.Fatalf("useradd %s: %v: %s", vlcUser, err, out)
		}
		if u, err = user.Lookup(vlcUser); err != nil {
			t.Fatal(err)
		}
	}
	return credOf(t, u)
}

func credOf(t testing.TB, u *user.User) *syscall.Credential {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %s: uid %q gid %q", vlcUser, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// URL is the camera's stream.
func (v *VLCCamera) URL() string { return "rtsp://" + v.Addr + "/cam1" }

// Start launches VLC and returns once its SDP lists every stream of the
// clip (at most 20 s). VLC answers DESCRIBE as soon as its port is open,
// with the streams its demuxer has found so far: a recorder connecting
// in the first moments may see the video without the audio, as it would
// from a camera still booting. Tests of a whole camera wait for all of it.
func (v *VLCCamera) Start() {
	v.t.Helper()
	if v.cmd != nil {
		v.t.Fatal("VLC already running")
	}
	cmd := exec.Command(v.bin, "-I", "dummy", "--no-video-title-show", v.clip, "--loop",
		"--sout", fmt.Sprintf("#rtp{sdp=rtsp://%s/cam1}", v.Addr), "--sout-keep")
	cmd.Dir = v.dir
	cmd.Env = []string{"HOME=" + v.dir, "PATH=/usr/bin:/bin"}
	log, err := os.OpenFile(filepath.Join(v.dir, "vlc.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		v.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: v.cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		v.t.Fatalf("start VLC: %v", err)
	}
	v.cmd, v.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(v.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := v.describe()
		if err == nil && n >= v.tracks {
			return
		}
		select {
		case <-v.done:
			b, _ := os.ReadFile(filepath.Join(v.dir, "vlc.log"))
			v.cmd = nil
			v.t.Fatalf("VLC exited before serving: %s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v.Stop()
			v.t.Fatalf("VLC did not describe the clip's %d stream(s) within 20 s (last: %d, %v)", v.tracks, n, err)
		}
	}
}

// describe returns how many medias VLC's SDP lists now.
func (v *VLCCamera) describe() (int, error) {
	u, err := base.ParseURL(v.URL())
	if err != nil {
		return 0, err
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: time.Second, WriteTimeout: time.Second}
	if err := c.Start2(); err != nil {
		return 0, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, err
	}
	return len(desc.Medias), nil
}

// streamsOf counts the video and audio streams of clip with ffprobe
// (which ffmpeg's package brings).
func streamsOf(t testing.TB, clip string) int {
	t.Helper()
	ffprobe := NeedTool(t, "ffprobe")
	// JSON: the flat formats list a program's streams a second time.
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", clip).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", clip, err)
	}
	var probe struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe %s: %v", clip, err)
	}
	n := 0
	for _, s := range probe.Streams {
		if s.CodecType == "video" || s.CodecType == "audio" {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("ffprobe finds no video or audio stream in %s", clip)
	}
	return n
}

// Stop kills VLC (its own process group only) and waits until it is gone
// and its port is closed.
func (v *VLCCamera) Stop() {
	if v.cmd == nil {
		return
	}
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-v.done:
	case <-ctx.Done():
		v.t.Errorf("VLC (pid %d) did not exit", v.cmd.Process.Pid)
	}
	v.cmd = nil
}
