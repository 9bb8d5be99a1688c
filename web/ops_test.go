package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buddyrec/buddyrec/api"
)

// operatorSource is a fakeSource that also drains and restarts.
type operatorSource struct {
	*fakeSource
	mu       sync.Mutex
	m        api.Maintenance
	calls    []string // "op by"
	noReboot bool
}

func (o *operatorSource) Maintenance() api.Maintenance {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m
}

func (o *operatorSource) SetMaintenance(on bool, by string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	op := "undrain"
	if on {
		op = "drain"
		since := testNow
		o.m = api.Maintenance{Server: o.self, Maintenance: true, Since: &since, By: by, Complete: true, Moved: map[string]string{"rec-a/lobby": "rec-b"}}
	} else {
		o.m = api.Maintenance{Server: o.self, Complete: true}
	}
	o.calls = append(o.calls, op+" "+by)
	return nil
}

func (o *operatorSource) Restart(by string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.noReboot {
		return ErrNoRestart
	}
	o.calls = append(o.calls, "restart "+by)
	return nil
}

// TestOperationsButtons: the page offers Drain, and once drained
// Undrain, and Restart; each is a POST acting as the signed-in user,
// refused cross-site; a server in maintenance shows as "maintenance".
func TestOperationsButtons(t *testing.T) {
	auth := newTestAuth(t, AuthOptions{UsersFile: usersFile(t), TokenFile: writeFile(t, "token", apiToken), GossipKey: gossipKey})
	peer := serveNode(t, siteB(), auth, Options{})
	src := &operatorSource{fakeSource: siteA(strings.TrimPrefix(peer.URL, "http://"))}
	srv := httptest.NewServer(auth.Wrap(NewHandler(Options{Source: src, Auth: auth, Now: func() time.Time { return testNow }})))
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	post := func(path string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic("bob", "bob-pw"))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	html := page(t, srv)
	if !strings.Contains(html, `action="/drain"`) || strings.Contains(html, `action="/undrain"`) || !strings.Contains(html, `action="/restart"`) {
		t.Fatalf("page of a running server lacks Drain and Restart, or offers Undrain")
	}
	if resp := post("/drain", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site drain: %d, want 403", resp.StatusCode)
	}
	if len(src.calls) != 0 {
		t.Fatalf("a cross-site form drained the server: %v", src.calls)
	}
	if resp := post("/drain", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain: %d, want 303", resp.StatusCode)
	}
	html = page(t, srv)
	if !strings.Contains(html, `action="/undrain"`) || strings.Contains(html, `action="/drain"`) || !strings.Contains(html, "1 camera handed over") || !strings.Contains(html, "by bob") {
		t.Errorf("drained page lacks Undrain or the handover figures")
	}
	if resp := post("/undrain", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("undrain: %d, want 303", resp.StatusCode)
	}
	if resp := post("/restart", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("restart: %d, want 303", resp.StatusCode)
	}
	if got := strings.Join(src.calls, ","); got != "drain bob,undrain bob,restart bob" {
		t.Fatalf("operations %q", got)
	}
	src.noReboot = true
	if resp := post("/restart", "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("restart without a way to restart: %d, want 501", resp.StatusCode)
	}
	// Unauthenticated: refused before any operation.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/drain", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous drain: %v %v, want 401", resp.StatusCode, err)
	}

	// A peer in maintenance shows so in the site table.
	row := serverRowOf(api.ServerInfo{Name: "rec-b", State: "alive", Maintenance: true}, "rec-a", colorMap{})
	if row.State != "maintenance" {
		t.Errorf("a server in maintenance shows as %q", row.State)
	}
}
