package tsdemux

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// Sample is one access unit in MP4 form, as the recorder hands it to
// storage (the tests map it to storage.Sample; storage's own tests cannot
// import a package that imports storage).
type Sample struct {
	DTS       int64 // in the track's time scale
	PTSOffset int32
	Sync      bool
	Payload   []byte
}

// Clip is a test clip converted the way the recorder converts a camera:
// parameter sets and AUDs out of the samples and into the codec, AVCC
// payloads, one AAC sample per access unit.
type Clip struct {
	Video          mp4.Codec // *mp4.CodecH264 or *mp4.CodecH265
	Audio          mp4.Codec // *mp4.CodecMPEG4Audio, or nil
	AudioTimeScale uint32
	VideoSamples   []Sample // 90 kHz
	AudioSamples   []Sample // AudioTimeScale
}

// Load reads an MPEG-TS clip into samples.
func Load(path string) (*Clip, error) {
	pes, err := Read(path)
	if err != nil {
		return nil, err
	}
	c := &Clip{}
	var h264c *mp4.CodecH264
	var h265c *mp4.CodecH265
	for _, p := range pes {
		switch p.Type {
		case H264, H265:
			var annexb h264.AnnexB
			if err := annexb.Unmarshal(p.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			var nalus [][]byte
			for _, n := range annexb {
				if len(n) == 0 {
					continue
				}
				if p.Type == H264 {
					if h264c == nil {
						h264c = &mp4.CodecH264{}
						c.Video = h264c
					}
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						h264c.SPS = firstOf(h264c.SPS, n)
					case h264.NALUTypePPS:
						h264c.PPS = firstOf(h264c.PPS, n)
					case h264.NALUTypeAccessUnitDelimiter:
						continue
					}
				} else {
					if h265c == nil {
						h265c = &mp4.CodecH265{}
						c.Video = h265c
					}
					switch h265.NALUType((n[0] >> 1) & 0x3f) {
					case h265.NALUType_VPS_NUT:
						h265c.VPS = firstOf(h265c.VPS, n)
					case h265.NALUType_SPS_NUT:
						h265c.SPS = firstOf(h265c.SPS, n)
					case h265.NALUType_PPS_NUT:
						h265c.PPS = firstOf(h265c.PPS, n)
					case h265.NALUType_AUD_NUT:
						continue
					}
				}
				nalus = append(nalus, n)
			}
			var s fmp4.Sample
			if p.Type == H264 {
				err = s.FillH264(int32(p.PTS-p.DTS), nalus)
			} else {
				err = s.FillH265(int32(p.PTS-p.DTS), nalus)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			c.VideoSamples = append(c.VideoSamples, Sample{DTS: p.DTS, PTSOffset: s.PTSOffset, Sync: !s.IsNonSyncSample, Payload: s.Payload})
		case AAC:
			var pkts mpeg4audio.ADTSPackets
			if err := pkts.Unmarshal(p.Data); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			for i, pkt := range pkts {
				if c.Audio == nil {
					c.Audio = &mp4.CodecMPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
						Type: pkt.Type, SampleRate: pkt.SampleRate, ChannelCount: pkt.ChannelCount,
					}}
					c.AudioTimeScale = uint32(pkt.SampleRate)
				}
				base := p.PTS * int64(pkt.SampleRate) / 90000
				c.AudioSamples = append(c.AudioSamples, Sample{DTS: base + int64(i)*1024, Sync: true, Payload: pkt.AU})
			}
		}
	}
	if len(c.VideoSamples) == 0 {
		return nil, fmt.Errorf("%s: no video samples", path)
	}
	return c, nil
}

func firstOf(have, n []byte) []byte {
	if have != nil {
		return have
	}
	return n
}
