package tsdemux

import (
	"fmt"

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
// the first parameter sets in the codec (key frames keep theirs, as cameras
// send them), AUDs dropped, AVCC payloads, one AAC sample per access unit.
type Clip struct {
	Video          mp4.Codec // *mp4.CodecH264 or *mp4.CodecH265
	Audio          mp4.Codec // *mp4.CodecMPEG4Audio, or nil
	AudioTimeScale uint32
	VideoSamples   []Sample // 90 kHz
	AudioSamples   []Sample // AudioTimeScale
}

// Load reads an MPEG-TS clip into samples.
func Load(path string) (*Clip, error) {
	st, err := Read(path)
	if err != nil {
		return nil, err
	}
	c := &Clip{}
	isH264 := st.Codec == H264
	if isH264 {
		c.Video = &mp4.CodecH264{SPS: st.SPS, PPS: st.PPS}
	} else {
		c.Video = &mp4.CodecH265{VPS: st.VPS, SPS: st.SPS, PPS: st.PPS}
	}
	for _, v := range st.Video {
		var s fmp4.Sample
		if isH264 {
			err = s.FillH264(int32(v.PTS-v.DTS), v.NALUs)
		} else {
			err = s.FillH265(int32(v.PTS-v.DTS), v.NALUs)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c.VideoSamples = append(c.VideoSamples, Sample{DTS: v.DTS, PTSOffset: s.PTSOffset, Sync: !s.IsNonSyncSample, Payload: s.Payload})
	}
	if conf := st.AudioConfig; conf != nil {
		c.Audio = &mp4.CodecMPEG4Audio{Config: *conf}
		c.AudioTimeScale = uint32(conf.SampleRate)
		for _, p := range st.Audio {
			base := p.PTS * int64(conf.SampleRate) / 90000
			for i, au := range p.AUs {
				c.AudioSamples = append(c.AudioSamples, Sample{DTS: base + int64(i)*1024, Sync: true, Payload: au})
			}
		}
	}
	return c, nil
}
