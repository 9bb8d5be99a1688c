package recorder

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

type auEncoder interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}

// packetBuffer is one packet's payload in an allocation of its own, as a
// camera's packets arrive, so that a finalizer tells when it is freed.
type packetBuffer [1500]byte

// feed packetizes au and decodes it with dec. Each packet's payload is a
// packetBuffer whose finalizer counts freed; nothing here keeps them.
func feed(t *testing.T, enc auEncoder, dec auDecoder, au [][]byte, freed *atomic.Int64) [][]byte {
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
		got, err := dec.Decode(q)
		if err == nil {
			out = got
		}
	}
	return out
}

// TestRenewingDecoderFreesTheKeyframesPackets: after a fragmented IDR
// and a P frame, the IDR's packets are no longer held by the decoder, and
// every access unit comes out as it went in.
func TestRenewingDecoderFreesTheKeyframesPackets(t *testing.T) {
	h264f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	h265f := &format.H265{PayloadTyp: 96}
	for _, tc := range []struct {
		name        string
		h265        bool
		enc         func() (auEncoder, error)
		dec         func() (auDecoder, error)
		idr, pframe []byte // NAL unit headers
	}{
		{"H.264", false,
			func() (auEncoder, error) { return h264f.CreateEncoder() },
			func() (auDecoder, error) { return h264f.CreateDecoder() },
			[]byte{0x65}, []byte{0x41}},
		{"H.265", true,
			func() (auEncoder, error) { return h265f.CreateEncoder() },
			func() (auDecoder, error) { return h265f.CreateDecoder() },
			[]byte{19 << 1, 1}, []byte{1 << 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := tc.enc()
			if err != nil {
				t.Fatal(err)
			}
			dec, err := newRenewingDecoder(tc.h265, tc.dec)
			if err != nil {
				t.Fatal(err)
			}
			idr := append(tc.idr, bytes.Repeat([]byte{0xab}, 100<<10)...) // ~70 FU packets
			pframe := func(i byte) []byte { return append(tc.pframe, bytes.Repeat([]byte{i}, 6000)...) }
			checkFreed(t, enc, dec, idr, pframe)
		})
	}
}

func checkFreed(t *testing.T, enc auEncoder, dec auDecoder, idr []byte, pframe func(byte) []byte) {
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
		got := feed(t, enc, dec, [][]byte{idr}, &freed)
		if len(got) != 1 || !bytes.Equal(got[0], idr) {
			t.Fatalf("GOP %d: the IDR did not come out whole", gop)
		}
		for i := range byte(3) {
			got := feed(t, enc, dec, [][]byte{pframe(i)}, &freed)
			if len(got) != 1 || !bytes.Equal(got[0], pframe(i)) {
				t.Fatalf("GOP %d: P frame %d did not come out whole", gop, i)
			}
		}
	}
	// Every packet but those of the last P frame (still referenced by
	// the fresh decoder's fragment list) must be freed: both IDRs' in
	// full.
	want := 2*idrPackets + 5*pPackets
	deadline := time.Now().Add(5 * time.Second)
	for freed.Load() < want && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := freed.Load(); got < want {
		t.Errorf("%d packet buffers freed, want at least %d: the decoder keeps the keyframe's packets alive", got, want)
	}
	runtime.KeepAlive(dec)
}
