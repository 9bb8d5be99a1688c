package node

import (
	"testing"

	"github.com/buddyrec/buddyrec/config"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/recorder"
)

// TestStandbyVocabulary: the standby modes and event types the rules use
// are the config's, the recorder's and the event log's.
func TestStandbyVocabulary(t *testing.T) {
	for _, p := range [][]string{
		{control.StandbyCold, config.StandbyCold},
		{control.StandbyHot, config.StandbyHot, string(recorder.StandbyHot)},
		{control.StandbyMirror, config.StandbyMirror, string(recorder.StandbyMirror)},
		{control.TypeStandbyUnavailable, string(events.TypeStandbyUnavailable)},
		{control.TypeStandbyAvailable, string(events.TypeStandbyAvailable)},
	} {
		for _, v := range p[1:] {
			if v != p[0] {
				t.Errorf("control says %q, the vocabulary %q", p[0], v)
			}
		}
	}
}
