//go:build !linux

package recorder

import (
	"errors"
	"syscall"
)

// setRcvLowat does nothing outside Linux, whose TCP wakes a reader only at
// the low-water mark: elsewhere the stream is read packet by packet.
func setRcvLowat(syscall.RawConn, int) error { return errors.ErrUnsupported }

// pollState is empty here: nothing is read by polling.
type pollState struct{}

// readNow is not available here: a stream is read as it comes.
func (c *batchedConn) readNow([]byte) (total int, full bool, err error) {
	return 0, false, errors.ErrUnsupported
}
