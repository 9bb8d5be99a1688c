package buddy

import "slices"

// SetBuddies replaces Options.Buddies of a running cluster (a config
// reload): the servers named receive this server's secrets from now on,
// at once if they are alive, and the next record this server publishes
// names them, so a server taken off the list forgets the secrets it held
// (see forgetSecretsLocked) once that record reaches it.
func (c *Cluster) SetBuddies(buddies []string) {
	c.mu.Lock()
	if slices.Equal(c.o.Buddies, buddies) {
		c.mu.Unlock()
		return
	}
	c.o.Buddies = slices.Clone(buddies)
	c.buddies = map[string]bool{}
	for _, b := range buddies {
		if b != c.o.Name {
			c.buddies[b] = true
		}
	}
	c.mu.Unlock()
	c.sendSecrets("")
}
