package api

import "testing"

func TestStandbySummary(t *testing.T) {
	for _, tc := range []struct {
		sessions []CameraInfo
		want     string
	}{
		{nil, ""},
		{[]CameraInfo{{ID: "rec-a/c1", Home: "rec-a", Standby: "hot"}}, "standby for 1 camera of rec-a (hot)"},
		{[]CameraInfo{
			{ID: "rec-c/c1", Home: "rec-c", Standby: "mirror"},
			{ID: "rec-a/c1", Home: "rec-a", Standby: "hot"}, {ID: "rec-a/c2", Home: "rec-a", Standby: "hot"},
		}, "standby for 2 cameras of rec-a (hot), 1 camera of rec-c (mirror)"},
	} {
		if got := (Cameras{Standby: tc.sessions}).StandbySummary(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.sessions, got, tc.want)
		}
	}
}
