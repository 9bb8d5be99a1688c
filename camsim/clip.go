package camsim

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// MPEG-TS stream types this loader understands (ISO 13818-1 table 2-34).
const (
	streamTypeAACADTS = 0x0f
	streamTypeH264    = 0x1b
	streamTypeH265    = 0x24
	tsPacketSize      = 188
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

// pesBuf collects the payload of one PES packet of one elementary stream.
type pesBuf struct {
	streamType byte
	data       []byte
}

// loadClip reads an MPEG-TS file with one H.264 or H.265 track and at most one
// AAC (ADTS) track into memory.
func loadClip(path string) (*clip, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clip: %w", err)
	}
	c, err := parseClip(raw)
	if err != nil {
		return nil, fmt.Errorf("parse clip %s: %w", path, err)
	}
	return c, nil
}

// parseClip demuxes an MPEG-TS byte slice. It is a deliberately small
// demuxer (single-packet PSI sections, as written by ffmpeg and mediacommon)
// because mediacommon's mpegts reader pulls in a module this repository does
// not carry.
func parseClip(raw []byte) (*clip, error) {
	if len(raw) < tsPacketSize {
		return nil, errors.New("file too short for MPEG-TS")
	}
	pmtPID := -1
	streams := map[uint16]*pesBuf{}
	c := &clip{}
	var rawVideo []videoAU
	type rawAudio struct {
		pts int64
		aus [][]byte
	}
	var rawAud []rawAudio

	flush := func(pid uint16) error {
		pb := streams[pid]
		if pb == nil || len(pb.data) == 0 {
			return nil
		}
		data := pb.data
		pb.data = nil
		pts, dts, payload, err := parsePES(data)
		if err != nil {
			return fmt.Errorf("PID %d: %w", pid, err)
		}
		switch pb.streamType {
		case streamTypeH264, streamTypeH265:
			var au h264.AnnexB
			if err := au.Unmarshal(payload); err != nil {
				return fmt.Errorf("PID %d: annex-b: %w", pid, err)
			}
			rawVideo = append(rawVideo, videoAU{pts: pts, dts: dts, au: au})
		case streamTypeAACADTS:
			var pkts mpeg4audio.ADTSPackets
			if err := pkts.Unmarshal(payload); err != nil {
				return fmt.Errorf("PID %d: ADTS: %w", pid, err)
			}
			ra := rawAudio{pts: pts}
			for _, p := range pkts {
				if c.audioConf == nil {
					c.audioConf = &mpeg4audio.AudioSpecificConfig{
						Type:         p.Type,
						SampleRate:   p.SampleRate,
						ChannelCount: p.ChannelCount,
					}
				}
				ra.aus = append(ra.aus, p.AU)
			}
			rawAud = append(rawAud, ra)
		}
		return nil
	}

	for off := 0; off+tsPacketSize <= len(raw); off += tsPacketSize {
		p := raw[off : off+tsPacketSize]
		if p[0] != 0x47 {
			return nil, fmt.Errorf("lost sync at byte %d", off)
		}
		pusi := p[1]&0x40 != 0
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		afc := (p[3] >> 4) & 3
		pos := 4
		if afc&2 != 0 {
			pos += 1 + int(p[4])
		}
		if afc&1 == 0 || pos >= tsPacketSize {
			continue
		}
		payload := p[pos:]
		switch {
		case pid == 0 && pusi:
			sec, err := psiSection(payload)
			if err != nil {
				return nil, fmt.Errorf("PAT: %w", err)
			}
			for i := 5; i+4 <= len(sec); i += 4 {
				if prog := uint16(sec[i])<<8 | uint16(sec[i+1]); prog != 0 {
					pmtPID = int(uint16(sec[i+2]&0x1f)<<8 | uint16(sec[i+3]))
					break
				}
			}
		case int(pid) == pmtPID && pusi:
			sec, err := psiSection(payload)
			if err != nil {
				return nil, fmt.Errorf("PMT: %w", err)
			}
			if len(sec) < 9 {
				return nil, errors.New("PMT too short")
			}
			i := 9 + int(uint16(sec[7]&0x0f)<<8|uint16(sec[8]))
			for i+5 <= len(sec) {
				st := sec[i]
				esPID := uint16(sec[i+1]&0x1f)<<8 | uint16(sec[i+2])
				esLen := int(uint16(sec[i+3]&0x0f)<<8 | uint16(sec[i+4]))
				switch st {
				case streamTypeH264, streamTypeH265, streamTypeAACADTS:
					if streams[esPID] == nil {
						streams[esPID] = &pesBuf{streamType: st}
					}
				}
				i += 5 + esLen
			}
		default:
			pb := streams[pid]
			if pb == nil {
				continue
			}
			if pusi {
				if err := flush(pid); err != nil {
					return nil, err
				}
			}
			pb.data = append(pb.data, payload...)
		}
	}
	for pid := range streams {
		if err := flush(pid); err != nil {
			return nil, err
		}
	}
	for _, pb := range streams {
		switch pb.streamType {
		case streamTypeH264:
			c.codec = "h264"
		case streamTypeH265:
			c.codec = "h265"
		}
	}
	if c.codec == "" || len(rawVideo) == 0 {
		return nil, errors.New("no H.264 or H.265 track")
	}
	sort.SliceStable(rawVideo, func(i, j int) bool { return rawVideo[i].dts < rawVideo[j].dts })

	// Extract parameter sets for the SDP from the first AU that has them.
	for _, v := range rawVideo {
		for _, nalu := range v.au {
			if len(nalu) == 0 {
				continue
			}
			if c.codec == "h264" {
				switch h264.NALUType(nalu[0] & 0x1f) {
				case h264.NALUTypeSPS:
					if c.sps == nil {
						c.sps = nalu
					}
				case h264.NALUTypePPS:
					if c.pps == nil {
						c.pps = nalu
					}
				}
			} else if len(nalu) >= 2 {
				switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
				case h265.NALUType_VPS_NUT:
					if c.vps == nil {
						c.vps = nalu
					}
				case h265.NALUType_SPS_NUT:
					if c.sps == nil {
						c.sps = nalu
					}
				case h265.NALUType_PPS_NUT:
					if c.pps == nil {
						c.pps = nalu
					}
				}
			}
		}
	}
	if c.sps == nil || c.pps == nil || (c.codec == "h265" && c.vps == nil) {
		return nil, errors.New("video parameter sets not found")
	}

	base := rawVideo[0].dts
	if len(rawAud) > 0 && rawAud[0].pts < base {
		base = rawAud[0].pts
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
			start := (ra.pts - base) * sr / 90000
			for i, au := range ra.aus {
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

// psiSection returns the PSI section of a payload that starts with a pointer
// field, trimmed to its section_length (without CRC).
func psiSection(payload []byte) ([]byte, error) {
	if len(payload) < 1 {
		return nil, errors.New("empty")
	}
	p := int(payload[0]) + 1
	if p+3 > len(payload) {
		return nil, errors.New("truncated")
	}
	sec := payload[p:]
	l := int(uint16(sec[1]&0x0f)<<8 | uint16(sec[2]))
	if 3+l > len(sec) || l < 4 {
		return nil, errors.New("section spans packets or is too short")
	}
	return sec[3 : 3+l-4], nil
}

// parsePES splits a PES packet into timestamps (90 kHz) and payload. A
// missing DTS means DTS = PTS.
func parsePES(b []byte) (pts, dts int64, payload []byte, err error) {
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return 0, 0, nil, errors.New("bad PES start code")
	}
	flags := b[7]
	hl := int(b[8])
	if 9+hl > len(b) {
		return 0, 0, nil, errors.New("truncated PES header")
	}
	if flags&0x80 == 0 || hl < 5 {
		return 0, 0, nil, errors.New("PES without PTS")
	}
	pts = readTS(b[9:14])
	dts = pts
	if flags&0x40 != 0 && hl >= 10 {
		dts = readTS(b[14:19])
	}
	return pts, dts, b[9+hl:], nil
}

func readTS(b []byte) int64 {
	return int64(b[0]>>1&0x07)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}
