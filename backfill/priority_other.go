//go:build !linux

package backfill

// lowerThreadPriority is Linux-only; elsewhere the rate limit alone keeps
// the copy out of recording's way.
func lowerThreadPriority() error { return nil }
