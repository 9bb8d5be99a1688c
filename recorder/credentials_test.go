package recorder

import (
	"strings"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/camsim"
	"github.com/buddyrec/buddyrec/config"
)

// TestConfigCredentialsReachCamera: a password full of URL delimiters,
// given with the user and password keys (or written raw with an '@' in the
// URL), gets through config to a camera that demands it.
func TestConfigCredentialsReachCamera(t *testing.T) {
	const user, pass = "admin", "p@ss:w/rd#1?%x"
	cams := startCams(t, 2, "h264", map[int]camsim.Fault{
		1: {User: user, Pass: pass},
		2: {User: user, Pass: "p@ss:word"},
	})
	host := cams.Addr()
	src := "name = \"rec-a\"\ndata_dir = \"/d\"\n" +
		"[[camera]]\nname = \"keys\"\nurl = \"rtsp://" + host + "/cam1\"\nuser = \"" + user + "\"\npassword = \"" + pass + "\"\n" +
		"[[camera]]\nname = \"inline\"\nurl = \"rtsp://" + user + ":p@ss:word@" + host + "/cam2\"\n"
	cfg, err := config.Parse("rec.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	sink := newFakeSink()
	m := newTestManager(t, sink)
	var list []Camera
	for _, c := range cfg.Cameras {
		list = append(list, Camera{ID: c.ID(cfg.Name), Home: cfg.Name, URL: c.URL})
	}
	m.Set(list)
	for _, c := range list {
		waitFor(t, 15*time.Second, c.ID+" recording", func() bool { return status(m, c.ID).State == StateRecording })
	}
	for _, s := range m.Status() {
		if strings.Contains(s.Error, "p@ss") {
			t.Errorf("status shows the password: %q", s.Error)
		}
	}

	// A wrong password is reported as an authentication failure, redacted.
	bad := "name = \"rec-a\"\ndata_dir = \"/d\"\n[[camera]]\nname = \"keys\"\nurl = \"rtsp://" + host + "/cam1\"\nuser = \"admin\"\npassword = \"wr@ng/pass\"\n"
	cfg, err = config.Parse("rec.toml", bad)
	if err != nil {
		t.Fatal(err)
	}
	m.Set([]Camera{{ID: "rec-a/keys", Home: "rec-a", URL: cfg.Cameras[0].URL}})
	waitFor(t, 15*time.Second, "authentication failure", func() bool {
		return strings.Contains(status(m, "rec-a/keys").Error, "authentication failed")
	})
	if e := status(m, "rec-a/keys").Error; strings.Contains(e, "wr@ng") || strings.Contains(e, "pass") {
		t.Errorf("error shows the password: %q", e)
	}
}
