package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// errSkip marks an access unit that is dropped on purpose (before the first
// key frame, or without parameters yet); it is not a failure.
var errSkip = errors.New("skipped")

// videoRemuxer turns assembled access units (auAssembler) into MP4
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
	// keep, heads, views and viewBuf are reused per access unit: the NAL
	// units recorded, their first bytes, what the DTS extractor reads of
	// each (see viewSize), and the room for the views of fragmented ones.
	keep         []*nalUnit
	heads, views [][]byte
	viewBuf      []byte
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

// viewSize is how much of a slice NAL unit the DTS extractor is shown
// when the unit came in fragments: mediacommon reads at most its header
// and 22 bytes (h264.maxBytesToGetPOC; 12 for H.265).
const viewSize = 32

// remux processes one access unit with its PTS (90 kHz). It returns the
// sample fields, whether the AU is a sync sample and whether the picture
// size changed (the caller then begins a new stream). The payload is
// returned as pieces (storage.Sample.Pieces): the NAL units' bytes stay in
// the packets they arrived in, which the RTP client allocated for them and
// nobody writes to again, and only their 4-byte lengths (and the rebuilt
// header of a fragmented unit) are written, into one small buffer; the
// parameter sets go in front of each IDR. Copying a frame into one buffer
// was half of the bytes a recorder allocated (`bench record -profile`),
// and so half of its collector's work, which weighs most in the small
// heaps of worker processes.
func (v *videoRemuxer) remux(au *accessUnit, pts int64) (pieces [][]byte, dts int64, ptsOffset int32, sync, resized bool, err error) {
	v.keep, v.heads = v.keep[:0], v.heads[:0]
	for i := range au.nalus {
		n := &au.nalus[i]
		head := au.head(n)
		if len(head) == 0 {
			continue
		}
		if v.h265 {
			if n.size < 2 || len(head) < 2 {
				continue
			}
			switch h265.NALUType((head[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				if b := au.bytesOf(n); !bytes.Equal(b, v.vps) {
					v.vps = clone(b)
				}
				continue
			case h265.NALUType_SPS_NUT:
				resized = v.setSPS(au.bytesOf(n)) || resized
				continue
			case h265.NALUType_PPS_NUT:
				if b := au.bytesOf(n); !bytes.Equal(b, v.pps) {
					v.pps = clone(b)
				}
				continue
			case h265.NALUType_AUD_NUT:
				continue
			}
		} else {
			switch h264.NALUType(head[0] & 0x1f) {
			case h264.NALUTypeSPS:
				resized = v.setSPS(au.bytesOf(n)) || resized
				continue
			case h264.NALUTypePPS:
				if b := au.bytesOf(n); !bytes.Equal(b, v.pps) {
					v.pps = clone(b)
				}
				continue
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			}
		}
		v.keep = append(v.keep, n)
		v.heads = append(v.heads, head)
	}
	defer clear(v.heads) // let the packets go now, not at the next AU
	if len(v.keep) == 0 {
		return nil, 0, 0, false, resized, errSkip
	}
	var idr bool
	if v.h265 {
		idr = h265.IsRandomAccess(v.heads)
	} else {
		idr = h264.IsRandomAccess(v.heads)
	}
	if !idr && !v.gotIDR {
		return nil, 0, 0, false, resized, errSkip
	}
	if v.codec() == nil {
		return nil, 0, 0, false, resized, errSkip
	}
	var params [][]byte
	if idr {
		if v.h265 {
			params = [][]byte{v.vps, v.sps, v.pps}
		} else {
			params = [][]byte{v.sps, v.pps}
		}
	}
	// prefixes holds each unit's length (and rebuilt header); allocated
	// whole first, so that the pieces cut from it never move.
	nPieces, nPrefix, nView := 2*len(params), 4*len(params), 0
	for _, n := range v.keep {
		nPieces += 1 + n.hi - n.lo
		nPrefix += 4 + n.hdrLen
		if n.hdrLen > 0 || n.hi-n.lo != 1 {
			nView += viewSize
		}
	}
	prefixes := make([]byte, 0, nPrefix)
	pieces = make([][]byte, 0, nPieces)
	if cap(v.viewBuf) < nView {
		v.viewBuf = make([]byte, 0, nView)
	}
	viewBuf := v.viewBuf[:0]
	views := v.views[:0]
	for _, p := range params {
		at := len(prefixes)
		prefixes = binary.BigEndian.AppendUint32(prefixes, uint32(len(p)))
		pieces = append(pieces, prefixes[at:len(prefixes):len(prefixes)], p)
		views = append(views, p)
	}
	for _, n := range v.keep {
		at := len(prefixes)
		prefixes = binary.BigEndian.AppendUint32(prefixes, uint32(n.size))
		prefixes = append(prefixes, n.hdr[:n.hdrLen]...)
		pieces = append(pieces, prefixes[at:len(prefixes):len(prefixes)])
		for _, p := range au.pieces[n.lo:n.hi] {
			if len(p) > 0 {
				pieces = append(pieces, p)
			}
		}
		if n.hdrLen == 0 && n.hi-n.lo == 1 {
			views = append(views, au.pieces[n.lo])
			continue
		}
		vat := len(viewBuf)
		viewBuf = au.appendPrefix(viewBuf, n, viewSize)
		views = append(views, viewBuf[vat:])
	}
	v.views = views
	defer clear(v.views) // the packets go to the writer: keep no view of them
	clear(v.keep)
	if v.h265 {
		if v.dts265 == nil || idr && (!v.gotIDR || v.freshAtIDR) {
			v.freshAtIDR = false
			v.dts265 = &h265.DTSExtractor{}
			v.dts265.Initialize()
		}
		dts, err = v.dts265.Extract(views, pts)
	} else {
		if v.dts264 == nil || idr && (!v.gotIDR || v.freshAtIDR) {
			v.freshAtIDR = false
			v.dts264 = &h264.DTSExtractor{}
			v.dts264.Initialize()
		}
		dts, err = v.dts264.Extract(views, pts)
	}
	if err != nil {
		// Start over at the next IDR with a fresh extractor.
		v.gotIDR = false
		v.dts264, v.dts265 = nil, nil
		return nil, 0, 0, false, resized, fmt.Errorf("compute DTS: %w", err)
	}
	v.gotIDR = true
	return pieces, dts, int32(pts - dts), idr, resized, nil
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
