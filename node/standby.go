package node

import (
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/control"
	"github.com/buddyrec/buddyrec/recorder"
)

// standbyCameras turns the standby sessions the rules give this server
// into the recorder's cameras, in their mode, with the URLs the homes
// replicated here. The recorder changes a camera's mode in place, so a
// takeover (the camera leaves the standby list for the recorded one)
// keeps the session.
func (n *Node) standbyCameras(sessions []control.Standby) []recorder.Camera {
	var ids []string
	mode := map[string]recorder.Standby{}
	for _, s := range sessions {
		ids = append(ids, s.Camera)
		mode[s.Camera] = recorder.Standby(s.Mode)
	}
	cams := n.pipelineCameras(ids)
	for i := range cams {
		cams[i].Standby = mode[cams[i].ID]
	}
	return cams
}

// standbyWindow is how far back a hot standby's ring reaches (the
// recorder keeps two GOPs more): the time to detect the home's death
// (failover_after, plus a keepalive for the probe in flight) and the
// footage the home may not have made durable when it died (one part, and
// one sync interval of the same length). Written whole on takeover, the
// ring then starts at a keyframe at or before the home's last durable
// footage without asking the dead home anything.
func standbyWindow(failoverAfter, keepalive, part time.Duration) time.Duration {
	return failoverAfter + keepalive + 2*part
}

// standbyInfo is the API's view of the standby sessions.
func standbyInfo(self string, sts []recorder.Status, critical map[string]bool) []api.CameraInfo {
	var out []api.CameraInfo
	for _, s := range sts {
		if s.Standby == recorder.StandbyNone {
			continue
		}
		out = append(out, api.CameraInfo{
			ID: s.ID, Home: s.Home, RecordedBy: self, State: s.State, Since: s.Since.UTC(), Reason: string(s.Reason), Error: s.Error,
			Critical: critical[s.ID], Codec: s.Codec, BitrateBps: s.Bitrate, LastKeyframe: s.LastKeyframe,
			FramesReceived: s.FramesReceived, FramesDropped: s.FramesDropped, BytesReceived: s.BytesReceived,
			Reconnects: s.Reconnects, NextAttempt: s.NextAttempt,
			Standby: string(s.Standby), HeldBytes: s.HeldBytes, HeldSeconds: s.HeldSpan.Seconds(), NeedSeconds: s.HeldNeed.Seconds(), ResidentBytes: s.HeldResident,
		})
	}
	return out
}
