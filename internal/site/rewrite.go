package site

import (
	"fmt"
	"os"
)

// Rewrite edits the spec of server name and writes its config file again,
// with the same addresses, data folder and site files, as an installer
// editing the file before a reload does. The running process is not told.
func (s *Site) Rewrite(name string, edit func(*ServerSpec)) error {
	var gossips []string
	for _, srv := range s.Servers {
		gossips = append(gossips, srv.Gossip)
	}
	for i := range s.Spec.Servers {
		if s.Spec.Servers[i].Name != name {
			continue
		}
		edit(&s.Spec.Servers[i])
		srv := s.Servers[i]
		return os.WriteFile(srv.Config, []byte(s.config(s.Spec.Servers[i], srv, gossips)), 0o600)
	}
	return fmt.Errorf("site: no server %q", name)
}
