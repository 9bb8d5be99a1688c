package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"unicode"
)

// Camera URLs are where installers type passwords, and where a typo is most
// likely to put a password somewhere a parser does not expect it: a missing
// "//" turns the whole URL into a path, a '/' or '#' in a password ends the
// host early and pushes the rest into the path or fragment. So nothing here
// echoes a camera URL it has not fully understood: a URL that validates is
// shown with its password replaced (url.URL.Redacted), any other only by
// what follows its last '@' (the host and path), or not at all.

// encodeHint is what every message about a password that broke a URL ends
// with.
const encodeHint = "percent-encode it (@ → %40, : → %3A, / → %2F, # → %23, ? → %3F, % → %25, space → %20), or set the user and password keys beside the URL"

// checkCameraURL returns "" for a usable camera URL, or why it is not one.
// The message never quotes the URL; callers add DisplayURL.
func checkCameraURL(raw string) string {
	if i := strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return "contains a space or control character; if it is in the password, " + encodeHint
	}
	lower := strings.ToLower(raw)
	if !strings.HasPrefix(lower, "rtsp://") && !strings.HasPrefix(lower, "rtsps://") {
		return "must start with rtsp:// or rtsps:// (e.g. rtsp://10.0.1.21/stream1)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the input: never show it. A ':' then a
		// non-number in the host is almost always a password holding '/',
		// '#' or '?', which ended the userinfo early.
		return "does not parse as a URL; if the password holds '@', ':', '/', '#', '?', '%' or a space, " + encodeHint
	}
	if u.Host == "" || u.Hostname() == "" {
		return "has no host (e.g. rtsp://10.0.1.21/stream1)"
	}
	if u.User == nil && strings.Contains(raw, "@") || strings.Contains(u.Path, "@") || strings.Contains(u.Fragment, "@") || strings.Contains(u.RawQuery, "@") {
		// "rtsp://user:12/ab@host/" parses with host "user:12": the '@'
		// the installer meant is in the path.
		return "has an '@' after the host, so the password probably holds '/', '#' or '?', which end the host early; " + encodeHint
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "has a '#' (a URL fragment, which RTSP does not use); if it is in the password, " + encodeHint
	}
	return ""
}

// DisplayURL is how a camera URL may appear in messages, `check` output,
// logs and API answers: a valid URL with its password replaced by "xxxxx"
// and its query (which often carries tokens) hidden; anything else only by
// what follows its last '@', or by a placeholder when nothing can be shown
// safely. It never returns any part of a password, however malformed the
// input.
func DisplayURL(raw string) string {
	if u, ok := wellFormed(raw); ok {
		if u.RawQuery != "" {
			u.RawQuery = "redacted"
		}
		u.Fragment, u.RawFragment = "", ""
		return u.Redacted()
	}
	if at := strings.LastIndexByte(raw, '@'); at >= 0 {
		// Whatever precedes the last '@' may be credentials, mangled.
		rest := raw[at+1:]
		if q := strings.IndexAny(rest, "?#"); q >= 0 {
			rest = rest[:q]
		}
		if strings.ContainsFunc(rest, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return "(URL not shown: it may hold a password)"
		}
		return "xxxxx@" + rest
	}
	if plainURL(raw) {
		return raw
	}
	return "(URL not shown: it may hold a password)"
}

// wellFormed parses raw when it is scheme://host... with no blank and no
// '@' outside its userinfo: then url.URL.Redacted hides the whole
// password. Anything else may hold a password where Redacted does not look.
func wellFormed(raw string) (*url.URL, bool) {
	if strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.Host == "" || !strings.HasPrefix(raw[len(u.Scheme):], "://") {
		return nil, false
	}
	if u.User == nil && strings.Contains(raw, "@") || strings.ContainsAny(u.Path+u.RawQuery+u.Fragment, "@") {
		return nil, false
	}
	return u, true
}

// plainURL tells whether raw, which has no '@', visibly holds no password:
// after an optional "scheme://" every ':' starts a port number, and it has no
// query, fragment or blank.
func plainURL(raw string) bool {
	if strings.ContainsAny(raw, "?# \t\r\n") || raw == "" {
		return false
	}
	s := raw
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		s = s[i+3:]
	}
	for {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return true
		}
		s = s[i+1:]
		j := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == 0 || (j < len(s) && s[j] != '/') {
			return false
		}
	}
}

func isScheme(s string) bool {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return s != ""
}

// withCredentials returns the URL with user and password set as its
// userinfo, percent-encoded, so that a password holding '@', ':', '/', '#'
// or '?' reaches the camera intact (the RTSP client decodes it).
func withCredentials(raw, user, password string, hasPassword bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if hasPassword {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String(), nil
}

// decodeCameraCredentials reads the user, password and password_file keys
// of camera p and folds them into cam.URL; the URL must then carry no
// credentials of its own.
func (d *decoder) decodeCameraCredentials(m map[string]any, p string, cam *Camera) {
	cam.User = d.str(m, p, "user", "")
	password := d.str(m, p, "password", "")
	_, hasPassword := m["password"]
	cam.PasswordFile = d.path(d.str(m, p, "password_file", ""))
	switch {
	case hasPassword && cam.PasswordFile != "":
		d.errorf(p+".password_file", "set either password or password_file, not both")
		return
	case cam.PasswordFile != "":
		b, err := os.ReadFile(cam.PasswordFile)
		if err != nil {
			d.errorf(p+".password_file", "cannot read %s: %v", cam.PasswordFile, unwrapPathError(err))
			return
		}
		// One line; a trailing newline is what editors and `echo` add.
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			d.errorf(p+".password_file", "%s is empty", cam.PasswordFile)
			return
		}
		if strings.ContainsAny(password, "\r\n") {
			d.errorf(p+".password_file", "%s holds more than one line; it must hold the password alone", cam.PasswordFile)
			return
		}
		hasPassword = true
	}
	if cam.User == "" {
		if hasPassword {
			key := "password"
			if cam.PasswordFile != "" {
				key = "password_file"
			}
			d.errorf(p+"."+key, "needs user: RTSP cameras authenticate a user name with the password")
		}
		return
	}
	if cam.URL == "" || checkCameraURL(cam.URL) != "" {
		return // the URL's own problem is reported
	}
	if u, err := url.Parse(cam.URL); err == nil && u.User != nil {
		d.errorf(p+".url", "carries credentials while user is set: remove them from the URL (%s) and keep the user and password keys", DisplayURL(cam.URL))
		return
	}
	full, err := withCredentials(cam.URL, cam.User, password, hasPassword)
	if err != nil {
		d.errorf(p+".url", "%s: cannot add the credentials", DisplayURL(cam.URL))
		return
	}
	cam.URL = full
}

// cameraURLProblem reports a bad camera URL at its line, never quoting
// more of it than DisplayURL allows.
func (d *decoder) cameraURLProblem(p, raw string) {
	if msg := checkCameraURL(raw); msg != "" {
		d.errorf(p+".url", "%s %s", DisplayURL(raw), msg)
	}
}

// credentialSource says where a camera's credentials come from, for the
// summary.
func (c Camera) credentialSource() string {
	switch {
	case c.PasswordFile != "":
		return fmt.Sprintf(", password from %s", c.PasswordFile)
	case c.User != "":
		return ", user and password keys"
	}
	return ""
}
