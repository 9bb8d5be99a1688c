package recorder

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

func TestReasonOf(t *testing.T) {
	unauthorized := liberrors.ErrClientBadStatusCode{Code: base.StatusUnauthorized, Message: "Unauthorized"}
	notFound := liberrors.ErrClientBadStatusCode{Code: base.StatusNotFound, Message: "Not Found"}
	tests := []struct {
		name string
		err  error
		want Reason
	}{
		{"nil", nil, ""},
		{"describe 401", fmt.Errorf("describe: %w", connectError(unauthorized)), ReasonAuth},
		{"setup 404", fmt.Errorf("setup: %w", connectError(notFound)), ReasonUnreachable},
		{"refused", fmt.Errorf("describe: %w", connectError(errors.New("dial tcp 127.0.0.1:1: connect: connection refused"))), ReasonUnreachable},
		{"tcp timeout from Wait", liberrors.ErrClientTCPTimeout{}, ReasonStall},
		{"udp timeout from Wait", fmt.Errorf("x: %w", liberrors.ErrClientUDPTimeout{}), ReasonStall},
		{"own stall watch", fail(ReasonStall, errors.New("camera stalled: no video for 3s")), ReasonStall},
		{"EOF from Wait", io.EOF, ReasonClosed},
		{"no video track", fail(ReasonNoMedia, errors.New("camera offers no H.264 or H.265 video")), ReasonNoMedia},
		{"storage", fail(ReasonWriteError, errors.New("storage: write: disk full")), ReasonWriteError},
		// The outermost mark wins; an unmarked wrapper keeps the inner reason.
		{"nested", fail(ReasonClosed, fmt.Errorf("ended: %w", fail(ReasonDecode, errors.New("bad NALU")))), ReasonClosed},
		{"wrapped once", fmt.Errorf("ended: %w", fail(ReasonDecode, errors.New("bad NALU"))), ReasonDecode},
	}
	for _, tt := range tests {
		if got := reasonOf(tt.err); got != tt.want {
			t.Errorf("%s: reasonOf(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
	if err := connectError(unauthorized); err.Error() != "authentication failed (401 Unauthorized)" {
		t.Errorf("connectError(401) = %q", err)
	}
	if fail(ReasonAuth, nil) != nil {
		t.Error("fail(reason, nil) is not nil")
	}
}
