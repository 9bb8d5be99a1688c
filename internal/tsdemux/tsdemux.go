// Package tsdemux reads MPEG-TS clips (the committed test clips, camsim's
// sources) into access units with mediacommon's MPEG-TS reader: one H.264
// or H.265 track and at most one AAC track. camsim streams what it reads;
// Load converts it the way the recorder converts a camera, for tests and
// benchmarks of storage and export.
package tsdemux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// Video codecs of a Stream.
const (
	H264 = "h264"
	H265 = "h265"
)

// VideoAU is one video access unit, timestamps in 90 kHz units as in the
// file, NALUs without start codes and without the access unit delimiter.
type VideoAU struct {
	PTS, DTS int64
	NALUs    [][]byte
}

// AudioPES is the AAC access units of one PES packet; PTS (90 kHz) is the
// time of the first, each AU holds 1024 samples.
type AudioPES struct {
	PTS int64
	AUs [][]byte
}

// Stream is a demuxed clip, in file order.
type Stream struct {
	Codec string // H264 or H265
	// VPS (H.265 only), SPS and PPS are the first parameter sets found in
	// the video; Parse fails without them.
	VPS, SPS, PPS []byte
	Video         []VideoAU
	Audio         []AudioPES
	AudioConfig   *mpeg4audio.AudioSpecificConfig // nil without an AAC track
}

// Read demuxes the MPEG-TS file at path.
func Read(path string) (*Stream, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clip: %w", err)
	}
	s, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse clip %s: %w", path, err)
	}
	return s, nil
}

// Parse demuxes an MPEG-TS stream. The first H.264 or H.265 track is the
// video, the first AAC track the audio; other tracks are ignored. A clip
// the reader cannot decode cleanly is an error, not a partial result.
func Parse(r io.Reader) (*Stream, error) {
	rd := &mpegts.Reader{R: r}
	if err := rd.Initialize(); err != nil {
		return nil, err
	}
	var decodeErr error
	rd.OnDecodeError(func(err error) {
		if decodeErr == nil {
			decodeErr = err
		}
	})
	s := &Stream{}
	onVideo := func(pts, dts int64, au [][]byte) error {
		s.Video = append(s.Video, VideoAU{PTS: pts, DTS: dts, NALUs: au})
		return nil
	}
	for _, t := range rd.Tracks() {
		switch c := t.Codec.(type) {
		case *mpegts.CodecH264:
			if s.Codec == "" {
				s.Codec = H264
				rd.OnDataH264(t, onVideo)
			}
		case *mpegts.CodecH265:
			if s.Codec == "" {
				s.Codec = H265
				rd.OnDataH265(t, onVideo)
			}
		case *mpegts.CodecMPEG4Audio:
			if s.AudioConfig == nil {
				conf := c.Config
				s.AudioConfig = &conf
				rd.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error {
					s.Audio = append(s.Audio, AudioPES{PTS: pts, AUs: aus})
					return nil
				})
			}
		}
	}
	if s.Codec == "" {
		return nil, errors.New("no H.264 or H.265 track")
	}
	for {
		err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if decodeErr != nil {
			return nil, decodeErr
		}
	}
	if len(s.Video) == 0 {
		return nil, errors.New("no video access units")
	}
	s.findParams()
	if s.SPS == nil || s.PPS == nil || (s.Codec == H265 && s.VPS == nil) {
		return nil, errors.New("video parameter sets not found")
	}
	return s, nil
}

// findParams sets VPS, SPS and PPS from the first ones in the video.
func (s *Stream) findParams() {
	first := func(have *[]byte, n []byte) {
		if *have == nil {
			*have = n
		}
	}
	for _, v := range s.Video {
		for _, n := range v.NALUs {
			if len(n) == 0 {
				continue
			}
			if s.Codec == H264 {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					first(&s.SPS, n)
				case h264.NALUTypePPS:
					first(&s.PPS, n)
				}
				continue
			}
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				first(&s.VPS, n)
			case h265.NALUType_SPS_NUT:
				first(&s.SPS, n)
			case h265.NALUType_PPS_NUT:
				first(&s.PPS, n)
			}
		}
	}
}
