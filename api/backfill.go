package api

import "time"

// Backfill is the body of GET /api/v1/backfill: what this server is
// copying back from its peers of its own cameras (archive consolidation).
type Backfill struct {
	Server string `json:"server"`
	// RateMbps is the limit in force ([storage] backfill_mbps, or what
	// "auto" chose for the last peer copied from); 0 means unlimited.
	RateMbps float64 `json:"rate_mbps"`
	// RateAuto is set when backfill_mbps is "auto": the limit is half
	// the speed of the link that reaches the peer, and RateChosen says
	// which ("eth0 at 1000 Mbit/s", "loopback").
	RateAuto   bool   `json:"rate_auto,omitempty"`
	RateChosen string `json:"rate_chosen,omitempty"`
	// Cameras lists, per camera and peer, the footage still to copy; a
	// camera with nothing left is not listed.
	Cameras []BackfillCamera `json:"cameras"`
	// Copying is the segment being copied now, if any.
	Copying *BackfillCopy `json:"copying,omitempty"`
	// Totals since this server started.
	CopiedSegments int   `json:"copied_segments"`
	CopiedBytes    int64 `json:"copied_bytes"`
	// Refused counts copies that failed verification (size or digest) and
	// were discarded, to be retried.
	Refused int `json:"refused"`
}

// BackfillCamera is the footage of one camera still held only by one peer.
type BackfillCamera struct {
	Camera string `json:"camera"`
	Peer   string `json:"peer"`
	// PendingSeconds is the footage still to copy.
	PendingSeconds  float64 `json:"pending_seconds"`
	PendingSegments int     `json:"pending_segments"`
	PendingBytes    int64   `json:"pending_bytes"`
	// CopiedBytes is what this episode copied of the camera so far;
	// Percent is CopiedBytes of CopiedBytes + PendingBytes.
	CopiedBytes int64   `json:"copied_bytes"`
	Percent     float64 `json:"percent"`
	// Copying is true while one of its segments is being copied.
	Copying bool `json:"copying"`
	// LastError is why the last copy of it failed, if it did.
	LastError string `json:"last_error,omitempty"`
	// Text is the line the status page shows, e.g.
	// "rec-a/cam1: 10 min at rec-b, copying 40 %".
	Text string `json:"text"`
}

// BackfillCopy is the segment being copied.
type BackfillCopy struct {
	Camera       string    `json:"camera"`
	Peer         string    `json:"peer"`
	RecordedBy   string    `json:"recorded_by"`
	SegmentStart time.Time `json:"segment_start"`
	Bytes        int64     `json:"bytes"`
	Done         int64     `json:"done"`
}
