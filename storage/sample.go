package storage

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// Track describes one elementary stream of a camera as the recorder hands it
// to storage. Index i in Stream.Tracks becomes fMP4 track ID i+1.
type Track struct {
	// Codec is the mediacommon codec (mp4.CodecH264, mp4.CodecH265,
	// mp4.CodecMPEG4Audio); its parameters go into the init segment.
	Codec mp4.Codec
	// TimeScale is the clock rate of DTS values for this track
	// (90000 for video, the sample rate for AAC).
	TimeScale uint32
}

// Stream identifies what one recorder session writes: one RTSP connection
// of one camera. A reconnect begins a new Stream.
type Stream struct {
	// Camera is the site-wide id "home/name", e.g. "rec-a/lobby".
	Camera string
	// Home is the server whose config owns the camera.
	Home string
	// Tracks lists the tracks; the first video track drives segmentation.
	Tracks []Track
}

// Sample is one access unit (video) or one audio frame, already in MP4
// payload form (AVCC for H.264/H.265, raw AAC for audio).
type Sample struct {
	// Track is the index into Stream.Tracks.
	Track int
	// DTS is the decode timestamp in the track's TimeScale, monotonic within
	// a Stream (it may start anywhere). All tracks of a Stream share one
	// time origin, as gortsplib's PacketPTS2 and MPEG-TS timestamps do, so
	// audio is placed against video by DTS.
	DTS int64
	// PTSOffset is PTS-DTS in the track's TimeScale.
	PTSOffset int32
	// Sync is true for a random-access (IDR/IRAP) video sample; audio
	// samples are always sync.
	Sync bool
	// Payload is owned by storage after the call.
	Payload []byte
	// Arrival is the server wall clock when the sample arrived; it anchors
	// the segment start and detects clock jumps. Zero means time.Now().
	Arrival time.Time
}
