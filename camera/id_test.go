package camera

import (
	"encoding/json"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{in: "rec-a/lobby", want: ID{Home: "rec-a", Name: "lobby"}},
		{in: "r1/cam.01_b", want: ID{Home: "r1", Name: "cam.01_b"}},
		{in: "", wantErr: true},
		{in: "lobby", wantErr: true},
		{in: "/lobby", wantErr: true},
		{in: "rec-a/", wantErr: true},
		{in: "/", wantErr: true},
		{in: "rec-a/lobby/extra", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("Parse(%q).String() = %q, want the input back", tt.in, got.String())
		}
	}
}

func TestStringAndHomeOf(t *testing.T) {
	tests := []struct {
		id   ID
		str  string
		home string
	}{
		{ID{"rec-a", "lobby"}, "rec-a/lobby", "rec-a"},
		{New("b", "c"), "b/c", "b"},
		{ID{}, "", ""},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.str {
			t.Errorf("%#v.String() = %q, want %q", tt.id, got, tt.str)
		}
		if got := HomeOf(tt.str); got != tt.home {
			t.Errorf("HomeOf(%q) = %q, want %q", tt.str, got, tt.home)
		}
	}
	if got := HomeOf("no-slash"); got != "" {
		t.Errorf("HomeOf(no-slash) = %q, want empty", got)
	}
}

func TestJSON(t *testing.T) {
	in := struct {
		Camera ID          `json:"camera"`
		Zero   ID          `json:"zero"`
		ByID   map[ID]bool `json:"by_id"`
	}{Camera: New("rec-a", "lobby"), ByID: map[ID]bool{New("rec-b", "gate"): true}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"camera":"rec-a/lobby","zero":"","by_id":{"rec-b/gate":true}}`
	if string(b) != want {
		t.Fatalf("marshal = %s, want %s", b, want)
	}
	out := in
	out.Camera, out.ByID = ID{"x", "y"}, nil
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Camera != in.Camera || out.Zero != (ID{}) || !out.ByID[New("rec-b", "gate")] {
		t.Fatalf("round trip = %#v, want %#v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"camera":"nohome"}`), &out); err == nil {
		t.Fatal("unmarshal of a malformed id succeeded")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse of a malformed id did not panic")
		}
	}()
	MustParse("bad")
}
