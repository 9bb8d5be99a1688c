package recorder

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// failure is an error that carries its Reason. The pipeline wraps each
// error where it knows the cause, so Status.Reason never depends on the
// wording of an error text.
type failure struct {
	reason Reason
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// fail marks err with reason; a nil err stays nil.
func fail(reason Reason, err error) error {
	if err == nil {
		return nil
	}
	return &failure{reason: reason, err: err}
}

// reasonOf classifies the error that ended a session. Errors marked by fail
// (the outermost mark wins) give their reason; gortsplib's read timeouts are stalls;
// anything else ended a session the camera had been playing.
func reasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var f *failure
	if errors.As(err, &f) {
		return f.reason
	}
	if errors.As(err, new(liberrors.ErrClientTCPTimeout)) || errors.As(err, new(liberrors.ErrClientUDPTimeout)) {
		return ReasonStall
	}
	return ReasonClosed
}

// connectError marks an error of the RTSP handshake (describe, setup,
// play): a 401 says plainly that authentication failed; anything else
// means the camera could not be reached or would not serve.
func connectError(err error) error {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) && bad.Code == base.StatusUnauthorized {
		return fail(ReasonAuth, fmt.Errorf("authentication failed (%d %s)", bad.Code, bad.Message))
	}
	return fail(ReasonUnreachable, err)
}
