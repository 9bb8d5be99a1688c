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
// payload form (AVCC for H.264/H.265, raw AAC for audio). Its payload is
// either Payload, in one buffer, or Pieces; read it with Size,
// AppendPayload, AppendBuffers or Bytes, which take either.
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
	// Payload is the payload in one buffer, or nil when Pieces holds it.
	// It is owned by storage after the call.
	Payload []byte
	// Pieces is the payload as the buffers it arrived in, in order, when
	// Payload is nil. The recorder hands video over so: a frame's NAL
	// units stay in the RTP packets that brought them, with their AVCC
	// length prefixes in a small buffer of their own, and the segment
	// file gets them in one vectored write, so a frame's bytes are never
	// copied on the heap on their way to the disk (that copy was half of
	// what a worker allocated: see recorder/depack.go). Owned by storage
	// after the call, as Payload is, and never written to by anyone.
	Pieces [][]byte
	// Arrival is the server wall clock when the sample arrived; it anchors
	// the segment start and detects clock jumps. Zero means time.Now().
	Arrival time.Time
}

// Size is the payload's length in bytes.
func (s *Sample) Size() int {
	if s.Pieces == nil {
		return len(s.Payload)
	}
	n := 0
	for _, p := range s.Pieces {
		n += len(p)
	}
	return n
}

// AppendPayload appends the payload's bytes to b.
func (s *Sample) AppendPayload(b []byte) []byte {
	if s.Pieces == nil {
		return append(b, s.Payload...)
	}
	for _, p := range s.Pieces {
		b = append(b, p...)
	}
	return b
}

// AppendBuffers appends the payload's buffers to bufs, for a vectored
// write: Payload, or each of Pieces.
func (s *Sample) AppendBuffers(bufs [][]byte) [][]byte {
	if s.Pieces == nil {
		return append(bufs, s.Payload)
	}
	return append(bufs, s.Pieces...)
}

// Bytes is the payload in one buffer: Payload itself, or Pieces joined
// into a new one, for a reader that parses it (the live view's RTSP
// packetizer).
func (s *Sample) Bytes() []byte {
	if s.Pieces == nil {
		return s.Payload
	}
	return s.AppendPayload(make([]byte, 0, s.Size()))
}
