package buddy

import (
	"bytes"
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
