package api

import (
	"net/url"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query    string
		from, to time.Time
		err      string
	}{
		{"", now.Add(-24 * time.Hour), now, ""},
		{"from=2026-11-21T10:00:00Z", now.Add(-2 * time.Hour), now, ""},
		{"from=2026-11-21T10:00:00Z&to=2026-11-21T11:00:00Z", now.Add(-2 * time.Hour), now.Add(-time.Hour), ""},
		{"to=2026-11-21T11:00:00Z", now.Add(-25 * time.Hour), now.Add(-time.Hour), ""},
		{"from=yesterday", time.Time{}, time.Time{}, `from: "yesterday" is not an RFC 3339 time (such as 2006-01-02T15:04:05Z; years have 4 digits)`},
		{"to=1700000000", time.Time{}, time.Time{}, `to: "1700000000" is not an RFC 3339 time (such as 2006-01-02T15:04:05Z; years have 4 digits)`},
		// Times the index cannot represent (int64 nanoseconds) are refused,
		// not wrapped around into "no footage".
		{"from=0000-01-01T00:00:00Z", time.Time{}, time.Time{}, `from: "0000-01-01T00:00:00Z" is outside the times buddyrec can represent (1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z)`},
		{"from=2026-11-21T10:00:00Z&to=9999-12-31T23:59:59Z", time.Time{}, time.Time{}, `to: "9999-12-31T23:59:59Z" is outside the times buddyrec can represent (1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z)`},
		{"from=99999-01-01T00:00:00Z", time.Time{}, time.Time{}, `from: "99999-01-01T00:00:00Z" is not an RFC 3339 time (such as 2006-01-02T15:04:05Z; years have 4 digits)`},
		{"from=1677-09-21T00:12:44Z&to=2262-04-11T23:47:16Z", time.Date(1677, 9, 21, 0, 12, 44, 0, time.UTC), time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC), ""},
		{"from=2026-11-21T11:00:00Z&to=2026-11-21T10:00:00Z", time.Time{}, time.Time{}, "to: must be after from"},
	} {
		q, _ := url.ParseQuery(tc.query)
		from, to, err := ParseRange(q, now, 24*time.Hour)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err %v, want %q", tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || !from.Equal(tc.from) || !to.Equal(tc.to) {
			t.Errorf("%q: %v..%v, %v; want %v..%v", tc.query, from, to, err, tc.from, tc.to)
		}
	}
}

func TestIfFails(t *testing.T) {
	p := PlanPreview{Fail: []string{"rec-a"},
		Cameras: []PlannedCamera{
			{"rec-a/c1", "rec-c"}, {"rec-a/c2", "rec-b"}, {"rec-a/c3", "rec-c"}, {"rec-a/c4", "rec-d"},
			{"rec-b/c1", "rec-b"}, {"rec-a2/c1", "rec-a2"},
		},
		Unplaced: []string{"rec-a/c5", "rec-b/c9"},
	}
	tests := []struct {
		server, want string
	}{
		{"rec-a", "2 → rec-c, 1 → rec-b, 1 → rec-d, 1 not recorded"},
		{"rec-b", "1 → rec-b, 1 not recorded"},
		{"rec-x", "no cameras to move"},
	}
	for _, tc := range tests {
		if got := p.IfFails(tc.server).String(); got != tc.want {
			t.Errorf("IfFails(%s) = %q, want %q", tc.server, got, tc.want)
		}
	}
}
