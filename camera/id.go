// Package camera holds the site-wide identity of a camera.
//
// A camera belongs to the server whose configuration lists it, its home.
// Its name is unique on that server only, so across the site a camera is
// known by both: "home/name", for example "rec-a/lobby". That string is
// what the API, webhooks, the event log, live URLs
// (rtsp://server:port/home/name) and the storage folders use. Server and
// camera names are validated by the config loader and never contain a
// slash, so the split is unambiguous.
package camera

import (
	"fmt"
	"strings"
)

// ID identifies a camera in the site. The zero ID is no camera.
// IDs are comparable and may be used as map keys.
type ID struct {
	// Home is the server whose configuration lists the camera.
	Home string
	// Name is the camera's name on its home server.
	Name string
}

// New returns the ID of camera name on server home.
func New(home, name string) ID { return ID{Home: home, Name: name} }

// Parse reads an ID in its "home/name" form. Both parts must be non-empty
// and the name must not hold a further slash.
func Parse(s string) (ID, error) {
	home, name, ok := strings.Cut(s, "/")
	if !ok || home == "" || name == "" || strings.Contains(name, "/") {
		return ID{}, fmt.Errorf("camera id %q is not of the form home/name", s)
	}
	return ID{Home: home, Name: name}, nil
}

// MustParse is Parse for ids known to be well formed (tests, constants);
// it panics on a malformed id.
func MustParse(s string) ID {
	id, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

// HomeOf returns the home server of the camera id s, or "" when s is not a
// well-formed id. It is the short form of Parse for callers that only
// route by home.
func HomeOf(s string) string {
	id, err := Parse(s)
	if err != nil {
		return ""
	}
	return id.Home
}

// String returns the "home/name" form, or "" for the zero ID.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return id.Home + "/" + id.Name
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes id as "home/name", so IDs read and write as plain
// strings in JSON and TOML, also as map keys.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes "home/name"; an empty text is the zero ID.
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = ID{}
		return nil
	}
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
