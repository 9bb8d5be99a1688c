package recorder

import (
	"github.com/pion/rtp"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// renewingDecoder is gortsplib's H.264 or H.265 RTP decoder, replaced by a
// fresh one after each access unit with a keyframe that ended on the
// marker bit.
//
// Why: the library's decoder empties its list of FU fragments by
// truncating it, so the list's backing array keeps every packet of the
// largest fragmented NAL unit it ever joined alive: the keyframe's, some
// 30 KiB at 2 Mbit/s and 0.26 MiB at 8 Mbit/s, per camera, for the life
// of the session (the memory of a hot standby, issue 14, and of every
// recording). A fresh decoder after the keyframe lets them go; what the
// next one keeps is bounded by the largest frame until the next keyframe.
// Once per GOP costs one small allocation.
//
// Only at the marker bit: then the decoder holds no access unit in
// progress (a camera that splits access units by timestamp instead keeps
// the next one's first NAL units in it, so it is never replaced then). The
// one state lost is the decoder's Annex-B detection, which finds the start
// code again in the next such NAL unit.
type renewingDecoder struct {
	create func() (auDecoder, error)
	dec    auDecoder
	h265   bool
}

func newRenewingDecoder(h265 bool, create func() (auDecoder, error)) (*renewingDecoder, error) {
	d, err := create()
	if err != nil {
		return nil, err
	}
	return &renewingDecoder{create: create, dec: d, h265: h265}, nil
}

// Decode implements auDecoder.
func (r *renewingDecoder) Decode(pkt *rtp.Packet) ([][]byte, error) {
	au, err := r.dec.Decode(pkt)
	if err != nil || !pkt.Marker {
		return au, err
	}
	var key bool
	if r.h265 {
		key = h265.IsRandomAccess(au)
	} else {
		key = h264.IsRandomAccess(au)
	}
	if key {
		if d, err := r.create(); err == nil {
			r.dec = d
		}
	}
	return au, nil
}
