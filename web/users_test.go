package web

import (
	"os"
	"strings"
	"testing"
)

// TestSetUsersFile: a reloaded users file takes effect at once: a removed
// user is refused even with a remembered login, an added one may log in,
// and a broken file changes nothing.
func TestSetUsersFile(t *testing.T) {
	h := testHashes()
	path := usersFile(t) // alice and bob
	a := newTestAuth(t, AuthOptions{UsersFile: path})
	if !a.CheckUser("127.0.0.1", "bob", "bob-pw") {
		t.Fatal("bob refused before the reload")
	}
	if err := os.WriteFile(path, []byte("alice:"+h["bob-pw"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.SetUsersFile(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"bob", "bob-pw", false},     // removed, though his login was remembered
		{"alice", "alice-pw", false}, // her old password
		{"alice", "bob-pw", true},    // her new one
	} {
		if got := a.CheckUser("127.0.0.2", tc.user, tc.pass); got != tc.ok {
			t.Errorf("CheckUser(%s, %s) = %t after the reload, want %t", tc.user, tc.pass, got, tc.ok)
		}
	}
	if err := os.WriteFile(path, []byte("alice:"+h["bob-pw"]+"\ncarol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := a.SetUsersFile(path)
	if err == nil || !strings.Contains(err.Error(), path+":2:") || strings.Contains(err.Error(), h["bob-pw"]) {
		t.Fatalf("broken users file: %v, want file:line and no hash", err)
	}
	if !a.CheckUser("127.0.0.3", "alice", "bob-pw") {
		t.Error("a broken users file changed who may log in")
	}
}
