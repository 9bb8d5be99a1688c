package camsim

import (
	"sort"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/buddyrec/buddyrec/internal/tsdemux"
)

// videoAU is one video access unit of the clip, timestamps in 90 kHz units
// relative to the clip start.
type videoAU struct {
	pts, dts int64
	au       [][]byte
}

// audioAU is one AAC access unit; pts is in sample-rate units relative to the
// clip start.
type audioAU struct {
	pts int64
	au  []byte
}

// event is one entry of the clip's merged, time-ordered playlist.
type event struct {
	t90   int64 // 90 kHz time relative to clip start
	video bool
	idx   int
}

// clip is a demuxed file held in memory once and shared read-only by every
// camera and session, so N cameras cost one copy of the footage.
type clip struct {
	codec         string // "h264" or "h265"
	vps, sps, pps []byte
	video         []videoAU
	audio         []audioAU
	audioConf     *mpeg4audio.AudioSpecificConfig
	loop90        int64 // loop length in 90 kHz units
	loopAudio     int64 // loop length in audio sample-rate units
	events        []event
}

// loadClip reads an MPEG-TS file with one H.264 or H.265 track and at most one
// AAC track into memory.
func loadClip(path string) (*clip, error) {
	st, err := tsdemux.Read(path)
	if err != nil {
		return nil, err
	}
	return newClip(st)
}

// newClip lays a demuxed stream out for playback: timestamps relative to
// the clip start, parameter sets for the SDP, one time-ordered playlist.
func newClip(st *tsdemux.Stream) (*clip, error) {
	c := &clip{codec: st.Codec, vps: st.VPS, sps: st.SPS, pps: st.PPS, audioConf: st.AudioConfig}
	rawVideo := make([]videoAU, 0, len(st.Video))
	for _, v := range st.Video {
		rawVideo = append(rawVideo, videoAU{pts: v.PTS, dts: v.DTS, au: v.NALUs})
	}
	sort.SliceStable(rawVideo, func(i, j int) bool { return rawVideo[i].dts < rawVideo[j].dts })
	rawAud := st.Audio

	base := rawVideo[0].dts
	if len(rawAud) > 0 && rawAud[0].PTS < base {
		base = rawAud[0].PTS
	}
	frame90 := int64(3600)
	if len(rawVideo) > 1 {
		frame90 = rawVideo[1].dts - rawVideo[0].dts
	}
	for _, v := range rawVideo {
		c.video = append(c.video, videoAU{pts: v.pts - base, dts: v.dts - base, au: v.au})
	}
	c.loop90 = c.video[len(c.video)-1].dts + frame90
	if c.audioConf != nil && c.audioConf.SampleRate > 0 {
		sr := int64(c.audioConf.SampleRate)
		for _, ra := range rawAud {
			start := (ra.PTS - base) * sr / 90000
			for i, au := range ra.AUs {
				c.audio = append(c.audio, audioAU{pts: start + int64(i)*1024, au: au})
			}
		}
		if end := c.audio[len(c.audio)-1].pts*90000/sr + 1024*90000/sr; end > c.loop90 {
			c.loop90 = end
		}
		c.loopAudio = c.loop90 * sr / 90000
	}
	for i, v := range c.video {
		c.events = append(c.events, event{t90: v.dts, video: true, idx: i})
	}
	if c.audioConf != nil {
		sr := int64(c.audioConf.SampleRate)
		for i, a := range c.audio {
			c.events = append(c.events, event{t90: a.pts * 90000 / sr, idx: i})
		}
	}
	sort.SliceStable(c.events, func(i, j int) bool { return c.events[i].t90 < c.events[j].t90 })
	return c, nil
}
