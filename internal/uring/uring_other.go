//go:build !linux

package uring

import "errors"

// Ring is not available on this platform.
type Ring struct{}

// New reports that io_uring is Linux's.
func New(entries int) (*Ring, error) { return nil, errors.ErrUnsupported }

// Fdatasync is never called: New fails.
func (r *Ring) Fdatasync(fds []int, errs []error, parallel int) error { return errors.ErrUnsupported }

// Close does nothing.
func (r *Ring) Close() error { return nil }
