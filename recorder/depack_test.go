package recorder

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// The payload remux hands over in pieces is the AVCC of the access unit:
// joined, it is what mediacommon marshals from the same NAL units (the
// parameter sets in force in front of an IDR, the in-band ones left out),
// whether they arrived whole,
// aggregated or in fragments. And the fields are those a remuxer gives
// for the same access unit whole, although the DTS extractor was shown
// only the first bytes of a fragmented NAL unit.
func TestRemuxPiecesAreTheAVCC(t *testing.T) {
	pkts, _ := stream(t, codecCases()[0], rand.New(rand.NewPCG(1, 2)))
	asm, err := newAUAssembler(false, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	frag := newVideoRemuxer(false, nil, benchSPS, benchPPS)
	whole := newVideoRemuxer(false, nil, benchSPS, benchPPS)
	remuxed, fragmented := 0, 0
	for _, pkt := range pkts {
		if err := asm.Push(pkt, int64(pkt.Timestamp), true, func(u *accessUnit) {
			nalus := contiguous(u)
			for i := range u.nalus {
				if u.nalus[i].hdrLen > 0 {
					fragmented++
				}
			}
			pieces, dts, off, sync, _, err := frag.remux(u, u.pts)
			wpieces, wdts, woff, wsync, _, werr := whole.remux(accessUnitOf(nalus, u.pts), u.pts)
			if (err == nil) != (werr == nil) {
				t.Fatalf("access unit %d: remuxed in pieces: %v, whole: %v", remuxed, err, werr)
			}
			if err != nil {
				return
			}
			var want [][]byte
			if sync {
				// the parameter sets in force: the SDP's, or an in-band
				// one that parsed
				if !bytes.Equal(frag.sps, whole.sps) || !bytes.Equal(frag.pps, whole.pps) {
					t.Fatalf("access unit %d: the remuxers hold different parameter sets", remuxed)
				}
				want = append(want, frag.sps, frag.pps)
			}
			for _, n := range nalus {
				if typ := h264.NALUType(n[0] & 0x1f); typ != h264.NALUTypeSPS && typ != h264.NALUTypePPS {
					want = append(want, n)
				}
			}
			avcc, err := h264.AVCC(want).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Join(pieces, nil); !bytes.Equal(got, avcc) {
				t.Fatalf("access unit %d (sync %v): %d bytes in %d pieces, not the %d of its AVCC", remuxed, sync, len(got), len(pieces), len(avcc))
			}
			if got := bytes.Join(wpieces, nil); !bytes.Equal(got, avcc) {
				t.Fatalf("access unit %d whole: %d bytes, not the %d of its AVCC", remuxed, len(got), len(avcc))
			}
			if dts != wdts || off != woff || sync != wsync {
				t.Fatalf("access unit %d: dts %d offset %d sync %v in pieces, %d %d %v whole", remuxed, dts, off, sync, wdts, woff, wsync)
			}
			remuxed++
		}); err != nil {
			t.Fatal(err)
		}
	}
	if remuxed < 20 || fragmented == 0 {
		t.Fatalf("%d access units remuxed, %d NAL units fragmented: the stream does not test what it should", remuxed, fragmented)
	}
}
