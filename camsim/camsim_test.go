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

func TestServerDescribeAndAuth(t *testing.T) {
	srv, err := Start(context.Background(), Options{
		Listen: "127.0.0.1:0", Cameras: 2, ClipDir: "../testdata",
		Faults: map[int]Fault{2: {User: "admin", Pass: "pw"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	tests := []struct {
		name   string
		url    string
		status base.StatusCode // 0 = success
		medias int
	}{
		{"open camera", srv.URL(1), 0, 2},
		{"password given", srv.URL(2), 0, 2},
		{"password missing", "rtsp://" + srv.Addr() + "/cam2", base.StatusUnauthorized, 0},
		{"unknown camera", "rtsp://" + srv.Addr() + "/cam9", base.StatusNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := base.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
			if err := c.Start2(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			desc, _, err := c.Describe(u)
			var bad liberrors.ErrClientBadStatusCode
			switch {
			case tt.status != 0:
				if !errors.As(err, &bad) || bad.Code != tt.status {
					t.Fatalf("err = %v, want status %d", err, tt.status)
				}
			case err != nil:
				t.Fatal(err)
			case len(desc.Medias) != tt.medias:
				t.Fatalf("medias = %d, want %d", len(desc.Medias), tt.medias)
			}
		})
	}
}

func TestServerPacesFramesAndDrops(t *testing.T) {
	srv, err := Start(context.Background(), Options{
		Listen: "127.0.0.1:0", Cameras: 1, Codec: "h265", ClipDir: "../testdata",
		Faults: map[int]Fault{1: {DropAfter: 1200 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, _ := base.ParseURL(srv.URL(1))
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not dropped")
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("dropped after %s, want ~1.2s", el)
	}
	// Real-time pacing: 25 fps for ~1.2 s.
	if n := srv.Sent(1); n < 25 || n > 35 {
		t.Errorf("sent %d frames in ~1.2 s, want ~30", n)
	}
}

func TestStartErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"no cameras": {Listen: "127.0.0.1:0", ClipDir: "../testdata"},
		"bad codec":  {Listen: "127.0.0.1:0", Cameras: 1, Codec: "vp9", ClipDir: "../testdata"},
		"no clip":    {Listen: "127.0.0.1:0", Cameras: 1, Clip: "/nonexistent.ts"},
	} {
		if s, err := Start(context.Background(), o); err == nil {
			s.Close()
			t.Errorf("%s: no error", name)
		}
	}
}
