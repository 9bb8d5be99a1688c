package storage

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	cameraid "github.com/buddyrec/buddyrec/camera"
)

const (
	dateLayout = "2006-01-02"
	timeLayout = "15-04-05.000"
	fileExt    = ".mp4"
)

// escapeName makes one path element out of an arbitrary name, reversibly:
// every byte outside [A-Za-z0-9_-] and any leading dot is percent-encoded,
// so no name can contain a separator, be "." or "..", or escape Dir.
func escapeName(s string) string {
	if s == "" {
		return "%00"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// unescapeName reverses escapeName.
func unescapeName(s string) (string, error) {
	if s == "%00" {
		return "", nil
	}
	return url.PathUnescape(s)
}

// segmentRelPath is the path of a segment relative to Dir:
// <home>/<name>/<YYYY-MM-DD>/<HH-MM-SS.mmm>-<recordedby>.mp4 in UTC.
func segmentRelPath(camera, recordedBy string, start time.Time) (string, error) {
	id, err := cameraid.Parse(camera)
	if err != nil {
		return "", err
	}
	start = start.UTC()
	return filepath.Join(escapeName(id.Home), escapeName(id.Name), start.Format(dateLayout),
		start.Format(timeLayout)+"-"+escapeName(recordedBy)+fileExt), nil
}

// parseRelPath reverses segmentRelPath; recovery uses it to index files
// that have no index entry.
func parseRelPath(rel string) (camera, recordedBy string, start time.Time, err error) {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 4 {
		return "", "", time.Time{}, fmt.Errorf("unexpected segment path %q", rel)
	}
	home, err1 := unescapeName(parts[0])
	name, err2 := unescapeName(parts[1])
	if err1 != nil || err2 != nil || home == "" || name == "" {
		return "", "", time.Time{}, fmt.Errorf("unexpected camera folders in %q", rel)
	}
	base, ok := strings.CutSuffix(parts[3], fileExt)
	if !ok || len(base) < len(timeLayout)+2 || base[len(timeLayout)] != '-' {
		return "", "", time.Time{}, fmt.Errorf("unexpected segment file name %q", rel)
	}
	start, err = time.ParseInLocation(dateLayout+" "+timeLayout, parts[2]+" "+base[:len(timeLayout)], time.UTC)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("segment file name %q: %w", rel, err)
	}
	recordedBy, err = unescapeName(base[len(timeLayout)+1:])
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("segment file name %q: %w", rel, err)
	}
	return cameraid.New(home, name).String(), recordedBy, start, nil
}
