package recorder

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

type auEncoder interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}

type auDecoder interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

// codecCase is one codec, with gortsplib's own encoder and decoder, which
// the assembler is checked against.
type codecCase struct {
	name        string
	h265        bool
	enc         func() (auEncoder, error)
	dec         func() (auDecoder, error)
	idr, pframe []byte // NAL unit headers
	sps         []byte // a parameter set's header
}

func codecCases() []codecCase {
	h264f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	h265f := &format.H265{PayloadTyp: 96}
	return []codecCase{
		{"H.264", false,
			func() (auEncoder, error) { return h264f.CreateEncoder() },
			func() (auDecoder, error) { return h264f.CreateDecoder() },
			[]byte{0x65}, []byte{0x41}, []byte{0x67}},
		{"H.265", true,
			func() (auEncoder, error) { return h265f.CreateEncoder() },
			func() (auDecoder, error) { return h265f.CreateDecoder() },
			[]byte{19 << 1, 1}, []byte{1 << 1, 1}, []byte{33 << 1, 1}},
	}
}

// contiguous returns the NAL units of u, each as one slice.
func contiguous(u *accessUnit) [][]byte {
	var out [][]byte
	for i := range u.nalus {
		out = append(out, u.join(&u.nalus[i]))
	}
	return out
}

// stream is a camera's packets for a few GOPs of varied access units:
// small NAL units that aggregate, large ones that fragment, several NAL
// units per access unit.
func stream(t *testing.T, c codecCase, rng *rand.Rand) (pkts []*rtp.Packet, aus [][][]byte) {
	t.Helper()
	enc, err := c.enc()
	if err != nil {
		t.Fatal(err)
	}
	body := func(head []byte, n int) []byte {
		b := slices.Clone(head)
		for range n {
			b = append(b, byte(rng.IntN(255)+1)) // no start codes
		}
		return b
	}
	for i := range 40 {
		var au [][]byte
		if i%10 == 0 {
			au = [][]byte{body(c.sps, 20), body(c.idr, 30000+rng.IntN(20000))}
		} else {
			for range 1 + rng.IntN(3) {
				au = append(au, body(c.pframe, []int{30, 800, 5000}[rng.IntN(3)]))
			}
		}
		p, err := enc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range p {
			q.Timestamp = uint32(i * 3600)
		}
		pkts = append(pkts, p...)
		aus = append(aus, au)
	}
	return pkts, aus
}

// TestAUAssemblerAgreesWithGortsplib: on gortsplib's own packets, whole
// and with packets lost, the assembler gives the access units the
// library's decoders give, and a whole stream comes out as it went in.
func TestAUAssemblerAgreesWithGortsplib(t *testing.T) {
	for _, c := range codecCases() {
		for _, loss := range []float64{0, 0.02, 0.1} {
			t.Run(fmt.Sprintf("%s/loss %.0f%%", c.name, loss*100), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, uint64(loss*100)))
				pkts, sent := stream(t, c, rng)
				dec, err := c.dec()
				if err != nil {
					t.Fatal(err)
				}
				asm, err := newAUAssembler(c.h265, 1, 0)
				if err != nil {
					t.Fatal(err)
				}
				var want, got [][][]byte
				for i, p := range pkts {
					if loss > 0 && rng.Float64() < loss {
						continue
					}
					if au, err := dec.Decode(p); err == nil {
						want = append(want, au)
					}
					_ = asm.Push(p, int64(i), true, func(u *accessUnit) { got = append(got, contiguous(u)) })
				}
				// The NAL units that come through are the same, in the same
				// order.
				if !equalAU(slices.Concat(got...), slices.Concat(want...)) {
					t.Fatalf("loss %.2f: %d NAL units, gortsplib %d, or they differ", loss, len(slices.Concat(got...)), len(slices.Concat(want...)))
				}
				// And so are the access units, but where gortsplib's H.265
				// decoder, which never splits at a new timestamp, merges the
				// frames around a lost marker packet.
				if !c.h265 || loss == 0 {
					// gortsplib holds an access unit whose marker packet
					// failed until the next timestamp; the assembler hands it
					// over at once: at the end of the stream it has one more.
					if len(got) == len(want)+1 {
						got = got[:len(want)]
					}
					if len(got) != len(want) {
						t.Fatalf("loss %.2f: %d access units, gortsplib %d", loss, len(got), len(want))
					}
					for i := range want {
						if !equalAU(got[i], want[i]) {
							t.Fatalf("loss %.2f: access unit %d differs from gortsplib's: %d NAL units against %d", loss, i, len(got[i]), len(want[i]))
						}
					}
				}
				if loss == 0 {
					if len(got) != len(sent) {
						t.Fatalf("%d access units out of %d", len(got), len(sent))
					}
					for i := range sent {
						if !equalAU(got[i], sent[i]) {
							t.Fatalf("access unit %d did not come out as it went in", i)
						}
					}
				} else if len(got) == 0 {
					t.Fatal("nothing came through the losses")
				}
			})
		}
	}
}

func equalAU(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

// TestAUAssemblerCases: what the RFCs allow and cameras do beyond a
// clean stream.
func TestAUAssemblerCases(t *testing.T) {
	pkt := func(seq uint16, ts uint32, marker bool, payload ...byte) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: payload}
	}
	for _, tc := range []struct {
		name string
		h265 bool
		pkts []*rtp.Packet
		want [][][]byte // NAL units of each access unit emitted
		pts  []int64    // PTS of each (the packet index of its first packet)
	}{
		{"timestamps split access units without a marker", false, []*rtp.Packet{
			pkt(1, 100, false, 0x65, 1), pkt(2, 100, false, 0x65, 2), pkt(3, 200, false, 0x41, 3), pkt(4, 300, false, 0x41, 4),
		}, [][][]byte{{{0x65, 1}, {0x65, 2}}, {{0x41, 3}}}, []int64{0, 2}},
		{"a marker after a split hands over both", false, []*rtp.Packet{
			pkt(1, 100, false, 0x41, 1), pkt(2, 200, true, 0x41, 2),
		}, [][][]byte{{{0x41, 1}}, {{0x41, 2}}}, []int64{0, 1}},
		{"H.264 FU-A joined, its header rebuilt", false, []*rtp.Packet{
			pkt(1, 100, false, 0x7c, 0x85, 1, 2), pkt(2, 100, false, 0x7c, 0x05, 3), pkt(3, 100, true, 0x7c, 0x45, 4),
		}, [][][]byte{{{0x65, 1, 2, 3, 4}}}, []int64{0}},
		{"H.264 FU-A with start and end in one packet", false, []*rtp.Packet{
			pkt(1, 100, true, 0x5c, 0xc1, 9),
		}, [][][]byte{{{0x41, 9}}}, []int64{0}},
		{"a lost fragment drops its NAL unit only", false, []*rtp.Packet{
			pkt(1, 100, false, 0x67, 7), pkt(2, 100, false, 0x7c, 0x85, 1), pkt(4, 100, true, 0x7c, 0x45, 3),
		}, [][][]byte{{{0x67, 7}}}, []int64{0}},
		{"a stream joined mid-fragment", false, []*rtp.Packet{
			pkt(5, 100, true, 0x7c, 0x45, 3), pkt(6, 200, true, 0x41, 1),
		}, [][][]byte{{{0x41, 1}}}, []int64{1}},
		{"a fragment cut by a new timestamp", false, []*rtp.Packet{
			pkt(1, 100, false, 0x67, 7), pkt(2, 100, false, 0x7c, 0x85, 1), pkt(3, 200, true, 0x41, 2),
		}, [][][]byte{{{0x67, 7}}, {{0x41, 2}}}, []int64{0, 2}},
		{"STAP-A with padding", false, []*rtp.Packet{
			pkt(1, 100, true, 24, 0, 2, 0x67, 1, 0, 2, 0x68, 2, 0, 0, 0),
		}, [][][]byte{{{0x67, 1}, {0x68, 2}}}, []int64{0}},
		{"a STAP-A that does not parse adds nothing", false, []*rtp.Packet{
			pkt(1, 100, false, 0x67, 1), pkt(2, 100, true, 24, 0, 2, 0x68, 2, 0, 9, 1),
		}, [][][]byte{{{0x67, 1}}}, []int64{0}},
		{"Annex-B inside RTP", false, []*rtp.Packet{
			pkt(1, 100, true, 0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x65, 2),
		}, [][][]byte{{{0x67, 1}, {0x65, 2}}}, []int64{0}},
		{"H.265 FU joined", true, []*rtp.Packet{
			pkt(1, 100, false, 49<<1, 1, 0x80|19, 1), pkt(2, 100, true, 49<<1, 1, 0x40|19, 2),
		}, [][][]byte{{{19 << 1, 1, 1, 2}}}, []int64{0}},
		{"H.265 FU with start and end", true, []*rtp.Packet{
			pkt(1, 100, true, 49<<1, 1, 0xc0|1, 5),
		}, [][][]byte{{{1 << 1, 1, 5}}}, []int64{0}},
		{"H.265 aggregation packet", true, []*rtp.Packet{
			pkt(1, 100, true, 48<<1, 1, 0, 3, 32<<1, 1, 9, 0, 3, 33<<1, 1, 8),
		}, [][][]byte{{{32 << 1, 1, 9}, {33 << 1, 1, 8}}}, []int64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asm, err := newAUAssembler(tc.h265, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got [][][]byte
			var pts []int64
			for i, p := range tc.pkts {
				_ = asm.Push(p, int64(i), true, func(u *accessUnit) {
					got = append(got, contiguous(u))
					pts = append(pts, u.pts)
				})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d access units %v, want %d %v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if !equalAU(got[i], tc.want[i]) || pts[i] != tc.pts[i] {
					t.Errorf("access unit %d: %v at PTS %d, want %v at %d", i, got[i], pts[i], tc.want[i], tc.pts[i])
				}
			}
		})
	}
}

// TestAUAssemblerTakesTheFirstPTSItGets: the RTP client gives a PTS only
// from the first packet that carries PTS = DTS on (an SPS, a PPS, an IDR
// slice); an access unit takes the PTS of the first of its packets that
// has one, so a keyframe that opens with an access unit delimiter or an
// SEI (VLC's) is not lost for want of a PTS on its first packet.
func TestAUAssemblerTakesTheFirstPTSItGets(t *testing.T) {
	type in struct {
		payload []byte
		pts     int64
		ok      bool
	}
	for _, tc := range []struct {
		name   string
		h265   bool
		pkts   []in // one access unit, the marker on its last packet
		wantOK bool
		pts    int64
	}{
		{"H.264 keyframe led by a delimiter", false,
			[]in{{[]byte{0x09, 0xf0}, 0, false}, {[]byte{0x67, 1}, 900, true}, {[]byte{0x68, 2}, 900, true}, {[]byte{0x65, 3}, 900, true}}, true, 900},
		{"H.264 keyframe led by an SEI, the IDR fragmented", false,
			[]in{{[]byte{0x06, 5}, 0, false}, {[]byte{0x7c, 0x85, 1}, 900, true}, {[]byte{0x7c, 0x45, 2}, 900, true}}, true, 900},
		{"H.264 frame before the decoder starts", false,
			[]in{{[]byte{0x09, 0xf0}, 0, false}, {[]byte{0x41, 1}, 0, false}}, false, 0},
		{"H.264 first packet with a PTS", false,
			[]in{{[]byte{0x67, 1}, 500, true}, {[]byte{0x65, 3}, 500, true}}, true, 500},
		{"H.265 keyframe led by a delimiter", true,
			[]in{{[]byte{35 << 1, 1, 0x50}, 0, false}, {[]byte{33 << 1, 1, 7}, 900, true}, {[]byte{19 << 1, 1, 3}, 900, true}}, true, 900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asm, err := newAUAssembler(tc.h265, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []accessUnit
			for i, p := range tc.pkts {
				pkt := &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i + 1), Timestamp: 100, Marker: i == len(tc.pkts)-1}, Payload: p.payload}
				_ = asm.Push(pkt, p.pts, p.ok, func(u *accessUnit) { got = append(got, accessUnit{pts: u.pts, ptsOK: u.ptsOK}) })
			}
			if len(got) != 1 {
				t.Fatalf("%d access units, want 1", len(got))
			}
			if got[0].ptsOK != tc.wantOK || got[0].pts != tc.pts {
				t.Errorf("access unit with PTS %d (known %v), want %d (known %v)", got[0].pts, got[0].ptsOK, tc.pts, tc.wantOK)
			}
		})
	}
}

func TestAUAssemblerRefusesWhatItCannotRead(t *testing.T) {
	if _, err := newAUAssembler(false, 2, 0); err == nil {
		t.Error("H.264 interleaved mode accepted")
	}
	if _, err := newAUAssembler(true, 0, 1); err == nil {
		t.Error("H.265 decoding order numbers accepted")
	}
}

// packetBuffer is one packet's payload in an allocation of its own, as a
// camera's packets arrive, so that a finalizer tells when it is freed.
type packetBuffer [1500]byte

// feed packetizes au and pushes it into asm. Each packet's payload is a
// packetBuffer whose finalizer counts freed; nothing here keeps them.
func feed(t *testing.T, enc auEncoder, asm *auAssembler, au [][]byte, freed *atomic.Int64) [][]byte {
	t.Helper()
	pkts, err := enc.Encode(au)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, p := range pkts {
		buf := new(packetBuffer)
		runtime.SetFinalizer(buf, func(*packetBuffer) { freed.Add(1) })
		n := copy(buf[:], p.Payload)
		q := &rtp.Packet{Header: p.Header, Payload: buf[:n]}
		_ = asm.Push(q, 0, true, func(u *accessUnit) { out = contiguous(u) })
	}
	return out
}

// TestAUAssemblerFreesTheKeyframesPackets: after a fragmented IDR and P
// frames, the IDR's packets are no longer held by the assembler (gortsplib's
// decoders kept the largest fragmented frame's packets alive for the life
// of a session), and every access unit comes out as it went in.
func TestAUAssemblerFreesTheKeyframesPackets(t *testing.T) {
	for _, c := range codecCases() {
		t.Run(c.name, func(t *testing.T) {
			enc, err := c.enc()
			if err != nil {
				t.Fatal(err)
			}
			asm, err := newAUAssembler(c.h265, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			idr := append(slices.Clone(c.idr), bytes.Repeat([]byte{0xab}, 100<<10)...) // ~70 FU packets
			pframe := func(i byte) []byte { return append(slices.Clone(c.pframe), bytes.Repeat([]byte{i + 1}, 6000)...) }
			count := func(au []byte) int64 {
				p, err := enc.Encode([][]byte{au})
				if err != nil {
					t.Fatal(err)
				}
				return int64(len(p))
			}
			idrPackets, pPackets := count(idr), count(pframe(0))
			var freed atomic.Int64
			for gop := range 2 {
				got := feed(t, enc, asm, [][]byte{idr}, &freed)
				if len(got) != 1 || !bytes.Equal(got[0], idr) {
					t.Fatalf("GOP %d: the IDR did not come out whole", gop)
				}
				for i := range byte(3) {
					got := feed(t, enc, asm, [][]byte{pframe(i)}, &freed)
					if len(got) != 1 || !bytes.Equal(got[0], pframe(i)) {
						t.Fatalf("GOP %d: P frame %d did not come out whole", gop, i)
					}
				}
			}
			// Every packet but those of the last P frame (the access unit
			// handed over last) must be freed: both IDRs' in full.
			want := 2*idrPackets + 5*pPackets
			deadline := time.Now().Add(5 * time.Second)
			for freed.Load() < want && time.Now().Before(deadline) {
				runtime.GC()
				time.Sleep(10 * time.Millisecond)
			}
			if got := freed.Load(); got < want {
				t.Errorf("%d packet buffers freed, want at least %d: the assembler keeps the keyframe's packets alive", got, want)
			}
			runtime.KeepAlive(asm)
		})
	}
}

// FuzzAUAssembler: whatever a camera sends, the assembler and the remuxer
// neither panic nor hand over an access unit that is not whole (each NAL
// unit non-empty, the sizes adding up). The input is a list of packets,
// each a flags byte (bit 0 marker, bit 1 new timestamp, bit 2 a skipped
// sequence number), a length byte and the payload.
func FuzzAUAssembler(f *testing.F) {
	f.Add(false, []byte{1, 3, 0x65, 1, 2})
	f.Add(false, []byte{0, 4, 0x7c, 0x85, 1, 2, 1, 3, 0x7c, 0x45, 3})
	f.Add(false, []byte{1, 9, 24, 0, 2, 0x67, 1, 0, 2, 0x68, 2})
	f.Add(false, []byte{1, 10, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65})
	f.Add(true, []byte{0, 4, 49 << 1, 1, 0x80 | 19, 1, 1, 4, 49 << 1, 1, 0x40 | 19, 2})
	f.Add(true, []byte{1, 12, 48 << 1, 1, 0, 3, 32 << 1, 1, 9, 0, 3, 33 << 1, 1, 8})
	f.Fuzz(func(t *testing.T, h265 bool, in []byte) {
		asm, err := newAUAssembler(h265, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		// H.264 with parameters, so that remux builds payloads too.
		vm := newVideoRemuxer(false, nil, benchSPS, benchPPS)
		if h265 {
			vm = newVideoRemuxer(true, nil, nil, nil)
		}
		var seq uint16
		var ts uint32
		for len(in) >= 2 {
			flags, n := in[0], int(in[1])
			in = in[2:]
			n = min(n, len(in))
			payload := in[:n]
			in = in[n:]
			if flags&2 != 0 {
				ts += 3600
			}
			seq++
			if flags&4 != 0 {
				seq++
			}
			pkt := &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: flags&1 != 0}, Payload: payload}
			_ = asm.Push(pkt, int64(ts), true, func(u *accessUnit) {
				if len(u.nalus) == 0 {
					t.Fatal("an empty access unit was handed over")
				}
				sum := 0
				for i := range u.nalus {
					if u.nalus[i].size == 0 || len(u.join(&u.nalus[i])) != u.nalus[i].size {
						t.Fatalf("NAL unit %d: size %d, bytes %d", i, u.nalus[i].size, len(u.join(&u.nalus[i])))
					}
					sum += u.nalus[i].size
				}
				if sum != u.size {
					t.Fatalf("access unit size %d, its NAL units %d", u.size, sum)
				}
				_, _, _, _, _, _ = vm.remux(u, u.pts)
			})
		}
	})
}
