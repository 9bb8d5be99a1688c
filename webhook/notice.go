package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"time"
)

// TypeTest is the type of the notice SendTest sends.
const TypeTest = "test"

// Notice is the JSON body sent to a PSIM. Type is an event type such as
// "failover.completed"; Server is the server emitting the notice (the
// adopter on failover), FailedServer the one that died, Address where the
// adopted cameras can now be reached, Cameras and Aspects what moved.
type Notice struct {
	Type         string    `json:"type"`
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Server       string    `json:"server"`
	FailedServer string    `json:"failed_server,omitempty"`
	Address      *Address  `json:"address,omitempty"`
	Cameras      []Camera  `json:"cameras,omitempty"`
	Aspects      []Aspect  `json:"aspects,omitempty"`
	Text         string    `json:"text,omitempty"`
}

// Address is how a PSIM reaches the emitting server.
type Address struct {
	IP   string `json:"ip,omitempty"`
	HTTP string `json:"http,omitempty"`
	RTSP string `json:"rtsp,omitempty"`
}

// Camera is one camera named in a notice, with the live URL a viewer uses
// now (on the adopting server, without credentials).
type Camera struct {
	ID      string `json:"id"`
	LiveURL string `json:"live_url,omitempty"`
	// Server names the server that records the camera now, when the
	// notice is not from it (server.maintenance names where each camera
	// went); its Address says how to reach that server.
	Server  string   `json:"server,omitempty"`
	Address *Address `json:"address,omitempty"`
}

// Aspect is a non-camera thing that moved with the server (I/O unit, LPR...).
type Aspect struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Target is one receiver. Events filters by notice type: empty means all,
// entries are exact types or globs such as "failover.*" (path.Match syntax).
type Target struct {
	Name   string
	URL    string
	Secret string
	Events []string
}

// Validate reports what is wrong with t without revealing its secret or
// URL credentials, for `buddyrec check` and for Open.
func (t Target) Validate() error {
	if t.Name == "" {
		return errors.New("webhook target: empty name")
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook target %s: url must be http(s)://host/...", t.Name)
	}
	if _, err := ParseSecret(t.Secret); err != nil {
		return fmt.Errorf("webhook target %s: %w", t.Name, err)
	}
	for _, p := range t.Events {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("webhook target %s: bad event filter %q", t.Name, p)
		}
	}
	return nil
}

// Wants reports whether the target subscribes to notices of type typ.
// Test notices go to every target.
func (t Target) Wants(typ string) bool {
	if len(t.Events) == 0 || typ == TypeTest {
		return true
	}
	for _, p := range t.Events {
		if ok, _ := path.Match(p, typ); ok {
			return true
		}
	}
	return false
}

// SafeURL returns rawURL without userinfo, query or fragment, fit for logs
// and error messages.
func SafeURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable url>"
	}
	s := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return s.String()
}

// newID returns a fresh "msg_<hex>" identifier for a notice.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return "msg_" + hex.EncodeToString(b[:])
}

var userinfoRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@]*):([^/\s]*)@`)

// scrub replaces passwords in URLs inside s with "xxxxx", defensively, so
// that a camera password handed in by mistake never reaches a PSIM.
func scrub(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}${2}:xxxxx@")
}

// scrubbed returns a copy of n with credentials removed from free text and
// camera URLs.
func (n Notice) scrubbed() Notice {
	n.Text = scrub(n.Text)
	if len(n.Cameras) > 0 {
		cams := make([]Camera, len(n.Cameras))
		for i, c := range n.Cameras {
			c.LiveURL = scrub(c.LiveURL)
			cams[i] = c
		}
		n.Cameras = cams
	}
	return n
}
