package buddy

import (
	"strings"
	"testing"
	"time"
)

func TestDeriveTiming(t *testing.T) {
	for _, tc := range []struct {
		k, f     time.Duration
		sm       int
		pt, gi   time.Duration
		tcp      time.Duration
		estimate time.Duration // K + SM×K + K/4 + K/2 (mean wait)
	}{
		{200 * time.Millisecond, time.Second, 3, 100 * time.Millisecond, 50 * time.Millisecond, 2 * time.Second, 950 * time.Millisecond},
		{time.Second, 3 * time.Second, 2, 500 * time.Millisecond, 250 * time.Millisecond, 10 * time.Second, 3750 * time.Millisecond},
		{500 * time.Millisecond, 5 * time.Second, 8, 250 * time.Millisecond, 125 * time.Millisecond, 5 * time.Second, 4875 * time.Millisecond},
		{100 * time.Millisecond, 300 * time.Millisecond, 2, 50 * time.Millisecond, 25 * time.Millisecond, time.Second, 375 * time.Millisecond},
	} {
		got := deriveTiming(tc.k, tc.f)
		if got.probeInterval != tc.k || got.probeTimeout != tc.pt || got.gossipInterval != tc.gi ||
			got.suspicionMult != tc.sm || got.tcpTimeout != tc.tcp {
			t.Errorf("deriveTiming(%s, %s) = %+v", tc.k, tc.f, got)
		}
		est := got.probeInterval/2 + got.probeInterval + time.Duration(got.suspicionMult)*got.probeInterval + got.gossipInterval
		if est != tc.estimate {
			t.Errorf("deriveTiming(%s, %s): mean detection estimate %s, want %s", tc.k, tc.f, est, tc.estimate)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	base := Options{Name: "a", BindAddr: "127.0.0.1:0", Key: testKey}
	for _, tc := range []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"ok", func(*Options) {}, ""},
		{"insecure ok", func(o *Options) { o.Key, o.Insecure = nil, true }, ""},
		{"no name", func(o *Options) { o.Name = "" }, "name is required"},
		{"no bind", func(o *Options) { o.BindAddr = "" }, "bind address"},
		{"no key", func(o *Options) { o.Key = nil }, "insecure"},
		{"short key", func(o *Options) { o.Key = []byte("123") }, "16, 24 or 32"},
		{"failover too short", func(o *Options) { o.Keepalive, o.FailoverAfter = time.Second, 2*time.Second }, "at least 3×"},
		{"tiny keepalive", func(o *Options) { o.Keepalive = time.Millisecond }, "below 10ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			got, err := o.withDefaults()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Keepalive != DefaultKeepalive || got.FailoverAfter != DefaultFailoverAfter || got.Logger == nil {
					t.Fatalf("defaults not applied: %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	for _, tc := range []struct{ bind, adv, wantErr string }{
		{"127.0.0.1:0", "10.0.0.1:0", "needs a port"},
		{"127.0.0.1", "", "missing port"},
		{"127.0.0.1:99999", "", "bad port"},
	} {
		o := base
		o.BindAddr, o.Advertise = tc.bind, tc.adv
		if _, err := o.memberlistConfig(deriveTiming(DefaultKeepalive, DefaultFailoverAfter)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("bind %q advertise %q: error %v, want %q", tc.bind, tc.adv, err, tc.wantErr)
		}
	}
}

func TestMetaLimit(t *testing.T) {
	full := nodeMeta{NodeKey: strings.Repeat("A", 43) + "="} // base64 of a 32-byte key
	b, err := encodeMeta(full)
	if err != nil {
		t.Fatalf("realistic meta rejected: %v", err)
	}
	got, err := decodeMeta(b)
	if err != nil || got != full {
		t.Fatalf("meta round trip: %+v %v", got, err)
	}
	if _, err := decodeMeta([]byte("{not json")); err == nil {
		t.Fatal("garbage meta decoded")
	}
}
