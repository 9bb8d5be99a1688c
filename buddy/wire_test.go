package buddy

import (
	"bytes"
	"crypto/ed25519"
	"reflect"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []entry{
		{Server: "rec-a", Version: 1, Body: []byte(`{"cams":[]}`)},
		{Server: "rec-b", Version: 1<<63 + 5, Body: nil, Left: true},
		{Server: "r", Version: 0, Body: bytes.Repeat([]byte{0xff}, 5000)},
		{Server: "rec-c", Version: 4, Body: []byte("x"), Buddies: []string{"rec-a", "rec-b"}},
		{Server: "rec-d", Version: 4, Body: []byte("x"), Buddies: []string{}}, // no buddies: nobody keeps secrets
	} {
		got, err := decodeEntry(encodeEntry(nil, e))
		if err != nil {
			t.Fatalf("decode %s: %v", e.Server, err)
		}
		if got.Server != e.Server || got.Version != e.Version || got.Left != e.Left || !bytes.Equal(got.Body, e.Body) ||
			(got.Buddies == nil) != (e.Buddies == nil) || !reflect.DeepEqual(append([]string{}, got.Buddies...), append([]string{}, e.Buddies...)) {
			t.Fatalf("round trip: got %+v want %+v", got, e)
		}
	}
	state := []entry{{Server: "a", Version: 2, Body: []byte("x"), Buddies: []string{"b"}}, {Server: "b", Version: 3, Left: true, Body: []byte{}}}
	got, err := decodeState(encodeState(state))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, state) {
		t.Fatalf("state round trip: got %+v want %+v", got, state)
	}
	s := secretEntry{From: "a", Version: 9, Body: []byte("rtsp://u:p@x")}
	gs, err := decodeSecret(encodeSecret(nil, s))
	if err != nil || !reflect.DeepEqual(gs, s) {
		t.Fatalf("secret round trip: %+v %v", gs, err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	valid := encodeEntry(nil, entry{Server: "rec-a", Version: 7, Body: []byte("body")})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"flags only", []byte{0}},
		{"truncated", valid[:len(valid)-2]},
		{"empty name", encodeEntry(nil, entry{Server: "", Version: 1})},
		{"huge length", []byte{0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad varint", []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"buddies truncated", func() []byte {
			b := encodeEntry(nil, entry{Server: "rec-a", Version: 7, Body: []byte("body"), Buddies: []string{"rec-b"}})
			return b[:len(b)-1]
		}()},
		{"empty buddy name", encodeEntry(nil, entry{Server: "rec-a", Version: 7, Body: []byte("body"), Buddies: []string{""}})},
		{"absurd buddy count", func() []byte {
			b := encodeEntry(nil, entry{Server: "rec-a", Version: 7, Body: []byte("body")})
			b[0] |= flagBuddies
			return append(b, 0xff, 0xff, 0x7f)
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeEntry(tc.b); err == nil {
				t.Fatal("decodeEntry accepted garbage")
			}
			if _, err := decodeSecret(tc.b); err == nil && len(tc.b) < 3 {
				t.Fatal("decodeSecret accepted garbage")
			}
			if _, err := decodeState(append([]byte{stateVersion, 1}, tc.b...)); err == nil {
				t.Fatal("decodeState accepted garbage")
			}
		})
	}
	if _, err := decodeState([]byte{99, 0}); err == nil {
		t.Fatal("unknown state version accepted")
	}
	if _, err := decodeState([]byte{stateVersion, 0xff, 0xff, 0xff, 0x7f}); err == nil {
		t.Fatal("absurd entry count accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeState([]entry{{Server: "a", Version: 1, Body: []byte("x")}}))
	f.Add(encodeEntry(nil, entry{Server: "b", Version: 2, Left: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeEntry(b)
		_, _ = decodeSecret(b)
		_, _ = decodeState(b)
	})
}

// TestSignedEntryRoundTrip: a signed entry and secrets decode with their
// signature intact, and any change to what was signed breaks it.
func TestSignedEntryRoundTrip(t *testing.T) {
	k := newKey(t)
	e := signEntry(k, entry{Server: "rec-a", Version: 42, Body: []byte(`{"name":"rec-a"}`), Buddies: []string{"rec-b"}})
	got, err := decodeEntry(encodeEntry(nil, e))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) || !ed25519.Verify(got.Key, signedEntry(got), got.Sig) {
		t.Fatalf("signed round trip: got %+v want %+v", got, e)
	}
	for name, tamper := range map[string]func(*entry){
		"body":    func(e *entry) { e.Body = []byte(`{"name":"rec-b"}`) },
		"server":  func(e *entry) { e.Server = "rec-b" },
		"version": func(e *entry) { e.Version = 1<<64 - 1 },
		"left":    func(e *entry) { e.Left = true },
		"buddies": func(e *entry) { e.Buddies = []string{"rec-x"} },
	} {
		bad := got
		tamper(&bad)
		if ed25519.Verify(bad.Key, signedEntry(bad), bad.Sig) {
			t.Errorf("signature still verifies after changing %s", name)
		}
	}
	s := signSecret(k, secretEntry{From: "rec-a", Version: 9, Body: []byte("rtsp://u:p@x")})
	gs, err := decodeSecret(encodeSecret(nil, s))
	if err != nil || !reflect.DeepEqual(gs, s) || !ed25519.Verify(gs.Key, signedSecret(gs), gs.Sig) {
		t.Fatalf("signed secret round trip: %+v %v", gs, err)
	}
	// A record's signature is no secrets' signature, and the reverse.
	if ed25519.Verify(k.Public().(ed25519.PublicKey), signedSecret(secretEntry{From: "rec-a", Version: 42, Body: e.Body}), e.Sig) {
		t.Error("a record signature verifies as secrets")
	}
	// A truncated signature is malformed, not accepted as unsigned.
	b := encodeEntry(nil, e)
	if _, err := decodeEntry(b[:len(b)-3]); err == nil {
		t.Error("truncated signature decoded")
	}
}
