package recorder

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pion/rtp"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// auAssembler rebuilds H.264 (RFC 6184: single NAL unit, STAP-A, FU-A)
// and H.265 (RFC 7798: single, AP, FU) access units from a camera's RTP
// packets, and leaves every NAL unit where it arrived: a NAL unit is the
// list of payload ranges it came in, and the sample handed to storage is
// those ranges with their AVCC length prefixes (videoRemuxer.remux), so
// that the recorder never copies a frame's bytes on the heap (a hot
// standby copies them once, into its ring's arena).
//
// Why not gortsplib's decoders: they join each fragmented NAL unit into a
// fresh buffer, which the MP4 sample then copied again. That join was a
// third of all the bytes a recording allocated (`bench record`, allocs
// profile of a worker of 25 cameras: 127 of 419 MB over a 30 s run), so
// a third of the garbage collector's work, which weighs most in the small
// heaps of worker processes. The decoders also kept the packets of the largest
// fragmented NAL unit alive for the life of the session (they truncate
// their fragment list instead of clearing it); here every reference to a
// packet is cleared once its access unit has been handed over (the
// sample then holds the packets until its part is written).
//
// What it keeps of the decoders' behaviour, so that a camera is read as
// before: an access unit ends at the marker bit, or at a packet with
// another RTP timestamp (cameras that never set the marker); a fragmented
// NAL unit with a missing packet is dropped, the rest of the access unit
// kept; a fragment whose start was never seen (joining a running stream)
// is dropped; the limits of NAL units per access unit and of its size are
// mediacommon's; an H.264 stream that wraps Annex-B start codes inside
// RTP is split at them. One difference: an H.265 FU with both the start
// and the end bit set, which RFC 7798 forbids, is taken as a whole NAL
// unit (as gortsplib's H.264 decoder does for FU-A), not refused. The
// other: an access unit carries the PTS of its first packet, so a camera
// that splits access units by timestamp gets each frame's own PTS, not
// the next frame's.
//
// It is used by one goroutine (gortsplib's reading goroutine of the
// session). Unsupported packetizations (H.264 interleaved mode, H.265
// with decoding order numbers) are refused by newAUAssembler, as the
// library refuses them.
type auAssembler struct {
	h265 bool
	// annexB is set once an H.264 NAL unit held a start code: from then on
	// every single NAL unit is split at its start codes (gortsplib's rule).
	annexB bool
	// cur is the access unit being assembled, done the one handed over
	// last: double buffered because a packet with a new timestamp both
	// ends one access unit and begins the next. Once emit has returned,
	// done's storage is free for reuse.
	cur, done accessUnit
	// frag is the fragmented NAL unit in progress (frag.open), whose
	// pieces are in cur.pieces from frag.lo.
	frag struct {
		open    bool
		hdr     [2]byte
		hdrLen  int
		lo      int
		size    int
		nextSeq uint16
	}
	// started is set by the first packet that starts a NAL unit: before
	// it, a continuation fragment means the stream was joined mid-frame.
	started bool
}

// accessUnit is one access unit as its NAL units. The NAL units and their
// pieces refer to the packets' payloads and are valid only until the
// assembler's next Push.
type accessUnit struct {
	nalus  []nalUnit
	pieces [][]byte
	size   int // bytes of NAL units, headers included
	ts     uint32
	pts    int64
	ptsOK  bool
}

// nalUnit is one NAL unit of an accessUnit: hdr (a fragmented unit's
// header, rebuilt from its FU indicator and header; hdrLen 0 otherwise)
// followed by pieces[lo:hi] of the access unit.
type nalUnit struct {
	hdr    [2]byte
	hdrLen int
	lo, hi int
	size   int // hdrLen + the pieces' lengths
}

var (
	errFragmentLost    = errors.New("discarding a NAL unit: an RTP packet of it is missing")
	errFragmentNoStart = errors.New("a fragment without its start (the stream was joined mid-frame)")
)

func newAUAssembler(isH265 bool, h264PacketizationMode, h265MaxDONDiff int) (*auAssembler, error) {
	if !isH265 && h264PacketizationMode >= 2 {
		return nil, fmt.Errorf("H.264 packetization-mode %d (interleaved) is not supported", h264PacketizationMode)
	}
	if isH265 && h265MaxDONDiff != 0 {
		return nil, fmt.Errorf("H.265 sprop-max-don-diff %d (decoding order numbers) is not supported", h265MaxDONDiff)
	}
	return &auAssembler{h265: isH265}, nil
}

func (a *auAssembler) maxNALUs() int {
	if a.h265 {
		return h265.MaxNALUsPerAccessUnit
	}
	return h264.MaxNALUsPerAccessUnit
}

// Push adds one RTP packet and its PTS (as the session's timestamp
// decoder gave it; ptsOK false before it has one) and calls emit for each
// access unit it completes, at most two: the one a new timestamp ended
// and, if the packet also carries the marker bit, its own. The access
// unit emit receives is valid only during the call. An error reports a
// packet or NAL unit dropped; the assembler goes on with the next packet.
func (a *auAssembler) Push(pkt *rtp.Packet, pts int64, ptsOK bool, emit func(*accessUnit)) error {
	a.done.reset()
	if len(a.cur.nalus) > 0 || a.frag.open {
		if pkt.Timestamp != a.cur.ts {
			// A new frame: the old one ends here (its marker bit was
			// lost or never set). A fragment cannot span two frames.
			a.dropFragment()
			if len(a.cur.nalus) > 0 {
				a.handOver(emit)
			}
		}
	}
	if len(a.cur.nalus) == 0 && !a.frag.open {
		a.cur.ts, a.cur.pts, a.cur.ptsOK = pkt.Timestamp, pts, ptsOK
	} else if ptsOK && !a.cur.ptsOK {
		// The client's timestamp decoder starts on the first packet
		// that carries PTS = DTS (an SPS, a PPS, an IDR slice). A
		// keyframe that opens with an access unit delimiter or an SEI,
		// as VLC's and many encoders' do, starts it on its second
		// packet: the frame takes the PTS of its first packet that has
		// one (they all share its RTP timestamp). Before, the first
		// keyframe after every connect was dropped, and recording began
		// a GOP late.
		a.cur.pts, a.cur.ptsOK = pts, true
	}
	err := a.parse(pkt)
	if pkt.Marker && !a.frag.open && len(a.cur.nalus) > 0 {
		a.handOver(emit)
	}
	return err
}

// handOver moves the current access unit to done and calls emit with it.
// The access unit done held before has been emitted already.
func (a *auAssembler) handOver(emit func(*accessUnit)) {
	a.cur, a.done = a.done, a.cur
	a.cur.reset()
	emit(&a.done)
}

// reset empties u, keeping its storage but no reference to a packet.
func (u *accessUnit) reset() {
	clear(u.pieces)
	u.pieces, u.nalus = u.pieces[:0], u.nalus[:0]
	u.size = 0
}

func (a *auAssembler) dropFragment() {
	if !a.frag.open {
		return
	}
	clear(a.cur.pieces[a.frag.lo:])
	a.cur.pieces = a.cur.pieces[:a.frag.lo]
	a.frag.open = false
}

// parse adds the NAL units of one packet to the current access unit.
func (a *auAssembler) parse(pkt *rtp.Packet) error {
	p := pkt.Payload
	hdrLen := 1
	if a.h265 {
		hdrLen = 2
	}
	if len(p) < hdrLen {
		a.dropFragment()
		return fmt.Errorf("RTP payload of %d bytes is too short", len(p))
	}
	var typ int
	const (
		stap264, fu264 = 24, 28
		ap265, fu265   = 48, 49
		paci265        = 50
	)
	if a.h265 {
		typ = int(p[0]>>1) & 0x3f
	} else {
		typ = int(p[0] & 0x1f)
	}
	switch {
	case !a.h265 && typ == fu264 || a.h265 && typ == fu265:
		return a.fragment(pkt)
	case !a.h265 && typ == stap264 || a.h265 && typ == ap265:
		a.dropFragment()
		a.started = true
		// An aggregation packet that does not parse adds nothing.
		nalus, pieces, size := len(a.cur.nalus), len(a.cur.pieces), a.cur.size
		err := a.aggregate(p[hdrLen:])
		if err != nil && len(a.cur.nalus) >= nalus {
			clear(a.cur.pieces[pieces:])
			a.cur.nalus, a.cur.pieces, a.cur.size = a.cur.nalus[:nalus], a.cur.pieces[:pieces], size
		}
		return err
	case !a.h265 && typ >= 25 && typ <= 27, !a.h265 && typ == 29:
		a.dropFragment()
		a.started = true
		return fmt.Errorf("H.264 packet type %d (STAP-B, MTAP or FU-B) is not supported", typ)
	case a.h265 && typ == paci265:
		a.dropFragment()
		return fmt.Errorf("H.265 PACI packets are not supported")
	}
	a.dropFragment()
	a.started = true
	return a.single(p)
}

// single adds a whole NAL unit (a single NAL unit packet, or a fragmented
// one just completed, given as the pieces from lo).
func (a *auAssembler) single(nalu []byte) error {
	if !a.h265 && (a.annexB || bytes.Contains(nalu, annexBStart)) {
		return a.splitAnnexB(nalu)
	}
	a.cur.pieces = append(a.cur.pieces, nalu)
	n := len(a.cur.pieces)
	return a.addNALU(nalUnit{lo: n - 1, hi: n, size: len(nalu)})
}

var annexBStart = []byte{0, 0, 0, 1}

// splitAnnexB adds the NAL units of an H.264 NAL unit that wraps Annex-B
// start codes (some cameras and servers send them so).
func (a *auAssembler) splitAnnexB(nalu []byte) error {
	a.annexB = true
	if !bytes.HasPrefix(nalu, annexBStart) {
		nalu = append(append([]byte(nil), annexBStart...), nalu...)
	}
	var split h264.AnnexB
	if err := split.Unmarshal(nalu); err != nil {
		return fmt.Errorf("Annex-B inside RTP: %w", err)
	}
	for _, n := range split {
		a.cur.pieces = append(a.cur.pieces, n)
		k := len(a.cur.pieces)
		if err := a.addNALU(nalUnit{lo: k - 1, hi: k, size: len(n)}); err != nil {
			return err
		}
	}
	return nil
}

// addNALU appends n, whose pieces are already in cur.pieces, within the
// limits; over them the access unit is dropped.
func (a *auAssembler) addNALU(n nalUnit) error {
	if n.size == 0 {
		return nil
	}
	maxSize := h264.MaxAccessUnitSize
	if a.h265 {
		maxSize = h265.MaxAccessUnitSize
	}
	if len(a.cur.nalus)+1 > a.maxNALUs() {
		a.cur.reset()
		return fmt.Errorf("access unit of more than %d NAL units dropped", a.maxNALUs())
	}
	if a.cur.size+n.size > maxSize {
		a.cur.reset()
		return fmt.Errorf("access unit of more than %d bytes dropped", maxSize)
	}
	a.cur.nalus = append(a.cur.nalus, n)
	a.cur.size += n.size
	return nil
}

// aggregate adds the NAL units of a STAP-A or AP payload (after its
// header): 16-bit sizes, each followed by a NAL unit.
func (a *auAssembler) aggregate(p []byte) error {
	count := 0
	for len(p) > 0 {
		if len(p) < 2 {
			return errors.New("aggregation packet: truncated size")
		}
		size := int(p[0])<<8 | int(p[1])
		p = p[2:]
		if size == 0 {
			if !a.h265 && isZero(p) {
				break // H.264 padding
			}
			return errors.New("aggregation packet: NAL unit of size 0")
		}
		if size > len(p) {
			return fmt.Errorf("aggregation packet: NAL unit of %d bytes in %d", size, len(p))
		}
		a.cur.pieces = append(a.cur.pieces, p[:size])
		k := len(a.cur.pieces)
		if err := a.addNALU(nalUnit{lo: k - 1, hi: k, size: size}); err != nil {
			return err
		}
		p = p[size:]
		count++
	}
	if count == 0 {
		return errors.New("aggregation packet without a NAL unit")
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fragment adds one FU-A (H.264) or FU (H.265) packet.
func (a *auAssembler) fragment(pkt *rtp.Packet) error {
	p := pkt.Payload
	fuLen := 2 // indicator + FU header
	if a.h265 {
		fuLen = 3 // payload header + FU header
	}
	if len(p) < fuLen {
		a.dropFragment()
		return errors.New("fragmentation unit too short")
	}
	fu := p[fuLen-1]
	start, end := fu&0x80 != 0, fu&0x40 != 0
	f := &a.frag
	if start {
		a.dropFragment()
		a.started = true
		f.open, f.lo, f.nextSeq = true, len(a.cur.pieces), pkt.SequenceNumber+1
		if a.h265 {
			typ := fu & 0x3f
			f.hdr = [2]byte{p[0]&0x81 | typ<<1, p[1]}
			f.hdrLen = 2
		} else {
			f.hdr = [2]byte{p[0]&0xe0 | fu&0x1f}
			f.hdrLen = 1
		}
		f.size = f.hdrLen
	} else {
		if !f.open {
			if !a.started {
				return errFragmentNoStart
			}
			return errors.New("fragmentation unit without its start")
		}
		if pkt.SequenceNumber != f.nextSeq {
			a.dropFragment()
			return errFragmentLost
		}
		f.nextSeq++
	}
	if body := p[fuLen:]; len(body) > 0 {
		a.cur.pieces = append(a.cur.pieces, body)
		f.size += len(body)
	}
	maxSize := h264.MaxAccessUnitSize
	if a.h265 {
		maxSize = h265.MaxAccessUnitSize
	}
	if f.size > maxSize {
		a.dropFragment()
		return fmt.Errorf("NAL unit of more than %d bytes dropped", maxSize)
	}
	if !end {
		return nil
	}
	f.open = false
	n := nalUnit{hdr: f.hdr, hdrLen: f.hdrLen, lo: f.lo, hi: len(a.cur.pieces), size: f.size}
	if !a.h265 && (a.annexB || a.piecesHoldStartCode(n)) {
		joined := a.cur.join(&n)
		clear(a.cur.pieces[n.lo:])
		a.cur.pieces = a.cur.pieces[:n.lo]
		return a.splitAnnexB(joined)
	}
	return a.addNALU(n)
}

// piecesHoldStartCode reports whether a fragmented H.264 NAL unit holds an
// Annex-B start code within one of its pieces (the only way a camera that
// wraps Annex-B in FU-A has been seen to send it).
func (a *auAssembler) piecesHoldStartCode(n nalUnit) bool {
	for _, p := range a.cur.pieces[n.lo:n.hi] {
		if bytes.Contains(p, annexBStart) {
			return true
		}
	}
	return false
}

// head returns the first bytes of n, at least its NAL unit header (2
// bytes for H.265 when the unit has them): what the NAL unit type and
// the random access check read.
func (u *accessUnit) head(n *nalUnit) []byte {
	if n.hdrLen > 0 {
		return n.hdr[:n.hdrLen]
	}
	return u.pieces[n.lo]
}

// bytesOf returns n contiguous: its only piece, or (for a fragmented
// unit) a fresh join, which only parameter sets need.
func (u *accessUnit) bytesOf(n *nalUnit) []byte {
	if n.hdrLen == 0 && n.hi-n.lo == 1 {
		return u.pieces[n.lo]
	}
	return u.join(n)
}

func (u *accessUnit) join(n *nalUnit) []byte {
	b := make([]byte, 0, n.size)
	b = append(b, n.hdr[:n.hdrLen]...)
	for _, p := range u.pieces[n.lo:n.hi] {
		b = append(b, p...)
	}
	return b
}

// appendTo appends n's bytes to b.
func (u *accessUnit) appendTo(b []byte, n *nalUnit) []byte {
	b = append(b, n.hdr[:n.hdrLen]...)
	for _, p := range u.pieces[n.lo:n.hi] {
		b = append(b, p...)
	}
	return b
}

// appendPrefix appends the first max bytes of n (all of it if shorter) to
// b.
func (u *accessUnit) appendPrefix(b []byte, n *nalUnit, max int) []byte {
	end := len(b) + max
	b = append(b, n.hdr[:n.hdrLen]...)
	for _, p := range u.pieces[n.lo:n.hi] {
		if len(b) >= end {
			break
		}
		b = append(b, p[:min(len(p), end-len(b))]...)
	}
	return b
}

// accessUnitOf makes an access unit of whole NAL units (tests, benchmarks).
func accessUnitOf(nalus [][]byte, pts int64) *accessUnit {
	u := &accessUnit{pts: pts, ptsOK: true}
	for _, n := range nalus {
		u.pieces = append(u.pieces, n)
		u.nalus = append(u.nalus, nalUnit{lo: len(u.pieces) - 1, hi: len(u.pieces), size: len(n)})
		u.size += len(n)
	}
	return u
}
