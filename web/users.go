package web

import (
	"fmt"
	"os"
)

// userSet returns the users and the hash unknown names are checked
// against, as of now.
func (a *Auth) userSet() (map[string][]byte, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users, a.dummyHash
}

func (a *Auth) hasUsers() bool {
	users, _ := a.userSet()
	return len(users) > 0
}

// SetUsersFile reads a users file again (a config reload) and makes its
// users the ones that may log in from the next request on: a removed
// user is refused, a changed password takes effect (remembered logins are
// forgotten). A file with any problem changes nothing; the error names
// the file and line, never a hash.
func (a *Auth) SetUsersFile(path string) error {
	users, err := ReadUsersFile(path)
	if err != nil {
		return err
	}
	var dummy []byte
	for _, h := range users {
		dummy = h
		break
	}
	a.mu.Lock()
	a.users, a.dummyHash = users, dummy
	clear(a.cache)
	a.mu.Unlock()
	return nil
}

// ReadUsersFile reads and parses a users file (see ParseUsers).
func ReadUsersFile(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users_file: %w", err)
	}
	return ParseUsers(path, b)
}
