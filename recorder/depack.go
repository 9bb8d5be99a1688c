package recorder

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// errSkip marks an access unit that is dropped on purpose (before the first
// key frame, or without parameters yet); it is not a failure.
var errSkip = errors.New("skipped")

// videoRemuxer turns decoded access units (Annex-B NAL lists) into MP4
// samples: it tracks in-band parameter sets, waits for the first IDR,
// computes DTS and produces the AVCC payload. It is used by one goroutine.
type videoRemuxer struct {
	h265          bool
	vps, sps, pps []byte
	width, height int
	gotIDR        bool
	// freshAtIDR makes the next IDR start a fresh DTS extractor (after a
	// timestamp discontinuity, where the new segment begins).
	freshAtIDR bool
	dts264     *h264.DTSExtractor
	dts265     *h265.DTSExtractor
	buf        [][]byte // reused filtered AU
	// junk counts in-band parameter sets that did not parse.
	junk uint64
}

func newVideoRemuxer(isH265 bool, vps, sps, pps []byte) *videoRemuxer {
	v := &videoRemuxer{h265: isH265}
	if len(sps) > 0 {
		if w, h, err := v.parseSPS(sps); err == nil {
			v.sps, v.width, v.height = sps, w, h
		}
	}
	if len(pps) > 0 {
		v.pps = pps
	}
	if len(vps) > 0 {
		v.vps = vps
	}
	return v
}

func (v *videoRemuxer) parseSPS(sps []byte) (int, int, error) {
	if v.h265 {
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, err
		}
		return s.Width(), s.Height(), nil
	}
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return 0, 0, err
	}
	return s.Width(), s.Height(), nil
}

// codec returns the MP4 codec for the current parameters, or nil if they are
// incomplete. The slices are copied so the storage side never shares memory
// with later in-band updates.
func (v *videoRemuxer) codec() mp4.Codec {
	if v.sps == nil || v.pps == nil {
		return nil
	}
	if v.h265 {
		if v.vps == nil {
			return nil
		}
		return &mp4.CodecH265{VPS: clone(v.vps), SPS: clone(v.sps), PPS: clone(v.pps)}
	}
	return &mp4.CodecH264{SPS: clone(v.sps), PPS: clone(v.pps)}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// remux processes one access unit with its PTS (90 kHz). It returns the
// sample fields, whether the AU is a sync sample and whether the picture
// size changed (the caller then begins a new stream).
func (v *videoRemuxer) remux(au [][]byte, pts int64) (payload []byte, dts int64, ptsOffset int32, sync, resized bool, err error) {
	v.buf = v.buf[:0]
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		if v.h265 {
			if len(nalu) < 2 {
				continue
			}
			switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				if !bytes.Equal(nalu, v.vps) {
					v.vps = clone(nalu)
				}
				continue
			case h265.NALUType_SPS_NUT:
				resized = v.setSPS(nalu) || resized
				continue
			case h265.NALUType_PPS_NUT:
				if !bytes.Equal(nalu, v.pps) {
					v.pps = clone(nalu)
				}
				continue
			case h265.NALUType_AUD_NUT:
				continue
			}
		} else {
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				resized = v.setSPS(nalu) || resized
				continue
			case h264.NALUTypePPS:
				if !bytes.Equal(nalu, v.pps) {
					v.pps = clone(nalu)
				}
				continue
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			}
		}
		v.buf = append(v.buf, nalu)
	}
	if len(v.buf) == 0 {
		return nil, 0, 0, false, resized, errSkip
	}
	var idr bool
	if v.h265 {
		idr = h265.IsRandomAccess(v.buf)
	} else {
		idr = h264.IsRandomAccess(v.buf)
	}
	if !idr && !v.gotIDR {
		return nil, 0, 0, false, resized, errSkip
	}
	if v.codec() == nil {
		return nil, 0, 0, false, resized, errSkip
	}
	out := v.buf
	if idr {
		n := 2
		if v.h265 {
			n = 3
		}
		out = append(out, make([][]byte, n)...)
		copy(out[n:], v.buf)
		if v.h265 {
			out[0], out[1], out[2] = v.vps, v.sps, v.pps
		} else {
			out[0], out[1] = v.sps, v.pps
		}
		v.buf = out
	}
	if v.h265 {
		if v.dts265 == nil || idr && (!v.gotIDR || v.freshAtIDR) {
			v.freshAtIDR = false
			v.dts265 = &h265.DTSExtractor{}
			v.dts265.Initialize()
		}
		dts, err = v.dts265.Extract(out, pts)
	} else {
		if v.dts264 == nil || idr && (!v.gotIDR || v.freshAtIDR) {
			v.freshAtIDR = false
			v.dts264 = &h264.DTSExtractor{}
			v.dts264.Initialize()
		}
		dts, err = v.dts264.Extract(out, pts)
	}
	if err != nil {
		// Start over at the next IDR with a fresh extractor.
		v.gotIDR = false
		v.dts264, v.dts265 = nil, nil
		return nil, 0, 0, false, resized, fmt.Errorf("compute DTS: %w", err)
	}
	v.gotIDR = true
	var s fmp4.Sample
	if v.h265 {
		err = s.FillH265(int32(pts-dts), out)
	} else {
		err = s.FillH264(int32(pts-dts), out)
	}
	if err != nil {
		return nil, 0, 0, false, resized, fmt.Errorf("build sample: %w", err)
	}
	clear(v.buf) // the payload is a copy: let the NAL units go now, not at the next AU
	return s.Payload, dts, s.PTSOffset, !s.IsNonSyncSample, resized, nil
}

// setSPS adopts an in-band SPS if it parses; it reports a size change.
func (v *videoRemuxer) setSPS(nalu []byte) bool {
	if bytes.Equal(nalu, v.sps) {
		return false
	}
	w, h, err := v.parseSPS(nalu)
	if err != nil {
		v.junk++
		return false
	}
	resized := v.sps != nil && (w != v.width || h != v.height)
	v.sps, v.width, v.height = clone(nalu), w, h
	return resized
}
