package control

import (
	"slices"
	"time"
)

// Footage is the durable footage of one pipeline's current run, as the
// index holds it: From is the first durable frame (the run's first
// keyframe), To the end of the last durable part. Both are zero until the
// run's first part is durable. A new run (the pipeline restarted, a
// handover back) starts a new Footage.
type Footage struct {
	From, To time.Time
}

// durable is what this server publishes in Record.Durable: the first
// durable frame of each camera it records, for the cameras whose run has
// written footage and whose pipeline records now (one that went offline
// since would let the old recorder stop into a hole).
func durable(cams []string, footage map[string]Footage, pipelines []Pipeline) map[string]time.Time {
	var out map[string]time.Time
	for _, id := range cams {
		if f := footage[id]; !f.From.IsZero() && pipelineRecording(pipelines, id) {
			if out == nil {
				out = map[string]time.Time{}
			}
			out[id] = f.From
		}
	}
	return out
}

// handedOver reports whether camera id, moving from this server to owner,
// may stop here: the owner's durable footage overlaps this server's. That
// is, the owner's record names a first durable frame of the camera, and
// this server's own durable footage reaches at least HandoffOverlap past
// it, so an export across the move finds no hole. A camera whose pipeline
// here does not record (offline, connecting) protects nothing: it stops
// as soon as the owner has durable footage.
//
// A pipeline existing on the owner (Record.Recording) is not enough: the
// owner still has to connect, wait for a keyframe and write its first
// part, which is the 0.7–0.9 s hole failback used to leave.
func handedOver(in Inputs, owner Record, id string) bool {
	from, ok := owner.Durable[id]
	if !ok || from.IsZero() {
		return false
	}
	if !pipelineRecording(in.Pipelines, id) {
		return true
	}
	return Covered(in.Footage[id], from, in.Config.handoffOverlap())
}

// Covered is the make-before-break test every move of a camera between
// two live recorders applies before the old one stops: the old
// recorder's durable footage reaches overlap past newFrom, the new
// recorder's first durable frame, so an export across the move finds no
// hole. handedOver applies it between servers; worker.Pool between two
// worker processes of one server (a replacement). Without a first
// durable frame of the new recorder it never holds.
func Covered(old Footage, newFrom time.Time, overlap time.Duration) bool {
	return !newFrom.IsZero() && !old.To.IsZero() && !old.To.Before(newFrom.Add(overlap))
}

// ownerStuck reports whether camera id, past its handoff deadline, still
// stays here: the new owner runs a pipeline for it but has written
// nothing durable (it cannot reach the camera, or lacks its credentials),
// while this server records it. Stopping would leave the camera recorded
// by nobody; the owner's camera.offline alarm says why it cannot take it.
func ownerStuck(in Inputs, owner Record, id string) bool {
	_, durable := owner.Durable[id]
	return !durable && slices.Contains(owner.Recording, id) && pipelineRecording(in.Pipelines, id)
}

func pipelineRecording(ps []Pipeline, id string) bool {
	for _, p := range ps {
		if p.ID == id {
			return p.State == PipelineRecording
		}
	}
	return false
}

func (c Config) handoffOverlap() time.Duration {
	if c.HandoffOverlap > 0 {
		return c.HandoffOverlap
	}
	return DefaultHandoffOverlap
}
