package camsim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// TestMaxSessions: a camera limited to one session refuses a second SETUP
// with 453 while the first plays on undisturbed, and serves the second
// once the first has gone.
func TestMaxSessions(t *testing.T) {
	srv, err := Start(context.Background(), Options{Listen: "127.0.0.1:0", Cameras: 1, ClipDir: "../testdata",
		Faults: map[int]Fault{1: {MaxSessions: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, err := base.ParseURL(srv.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	play := func() (*gortsplib.Client, error) {
		c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
		if err := c.Start2(); err != nil {
			return nil, err
		}
		desc, _, err := c.Describe(u)
		if err == nil {
			err = c.SetupAll(desc.BaseURL, desc.Medias)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		if _, err := c.Play(nil); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	first, err := play()
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Sent(1)
	_, err = play()
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusNotEnoughBandwidth {
		t.Fatalf("second session: %v, want 453", err)
	}
	time.Sleep(500 * time.Millisecond)
	if srv.Sent(1) <= before {
		t.Errorf("the first session stopped receiving after the refusal")
	}
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := play()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first session ended, a new one is still refused: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
