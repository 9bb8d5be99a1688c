package camsim

import (
	"context"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// rtpEncoder is the common shape of gortsplib's video RTP encoders.
type rtpEncoder interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}

// at90 converts a 90 kHz offset to a duration without overflowing for long
// runs.
func at90(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

// feed paces the clip into one session's stream in real time, looping with
// timestamps that keep increasing, and applies the camera's fault.
func (s *Server) feed(ctx context.Context, ss *session, conn *gortsplib.ServerConn) {
	c := s.clip
	fault := ss.cam.fault
	vMedia := ss.desc.Medias[0]
	var vEnc rtpEncoder
	switch f := vMedia.Formats[0].(type) {
	case *format.H264:
		e, err := f.CreateEncoder()
		if err != nil {
			s.log.Error("camsim: video encoder", "err", err)
			return
		}
		vEnc = e
	case *format.H265:
		e, err := f.CreateEncoder()
		if err != nil {
			s.log.Error("camsim: video encoder", "err", err)
			return
		}
		vEnc = e
	}
	var aEnc rtpEncoder
	if len(ss.desc.Medias) > 1 {
		e, err := ss.desc.Medias[1].Formats[0].(*format.MPEG4Audio).CreateEncoder()
		if err != nil {
			s.log.Error("camsim: audio encoder", "err", err)
			return
		}
		aEnc = e
	}
	rng := rand.New(rand.NewPCG(uint64(ss.cam.num), 42))
	vBase, aBase := rng.Uint32(), rng.Uint32()
	// The session joins the camera's running clip at the current position.
	sessionStart := time.Now()
	var phase90 int64
	if c.loop90 > 0 {
		phase90 = int64(sessionStart.Sub(ss.cam.epoch)/time.Microsecond) * 9 / 100 % c.loop90
	}
	start := sessionStart.Add(-at90(phase90))
	first := sort.Search(len(c.events), func(i int) bool { return c.events[i].t90 >= phase90 })
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	frames := 0
	// clock jumps: shift90 and shiftAudio are added to every timestamp
	var shift90, shiftAudio int64
	jumps, dups := 0, 0
	audioRate := int64(0)
	if len(ss.desc.Medias) > 1 {
		audioRate = int64(ss.desc.Medias[1].Formats[0].ClockRate())
	}

	for loop := int64(0); ; loop++ {
		events := c.events
		if loop == 0 {
			events = events[first:]
		}
		for _, ev := range events {
			at := start.Add(at90(loop*c.loop90 + ev.t90))
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return
			}
			elapsed := time.Since(sessionStart)
			if fault.DropAfter > 0 && elapsed >= fault.DropAfter {
				s.log.Info("camsim: dropping connection", "camera", ss.cam.num)
				conn.Close()
				return
			}
			if fault.StallAfter > 0 && elapsed >= fault.StallAfter {
				s.log.Info("camsim: stalling", "camera", ss.cam.num)
				<-ctx.Done()
				return
			}
			if fault.JumpEvery > 0 && elapsed >= time.Duration(jumps+1)*fault.JumpEvery {
				jumps++
				shift90 += int64(fault.JumpBy) * 90000 / int64(time.Second)
				shiftAudio += int64(fault.JumpBy/time.Millisecond) * audioRate / 1000
				dups = fault.Duplicates
				s.log.Info("camsim: clock jump", "camera", ss.cam.num, "by", fault.JumpBy)
			}

			if !ev.video {
				a := c.audio[ev.idx]
				pkts, err := aEnc.Encode([][]byte{a.au})
				if err != nil {
					continue
				}
				ts := aBase + uint32(loop*c.loopAudio+a.pts+shiftAudio)
				for _, p := range pkts {
					p.Timestamp = ts
					if err := ss.stream.WritePacketRTP(ss.desc.Medias[1], p); err != nil {
						return
					}
				}
				continue
			}

			v := c.video[ev.idx]
			ts := vBase + uint32(loop*c.loop90+v.pts+shift90)
			au := v.au
			if fault.Garbage && frames%10 == 5 {
				// An undecodable payload (aggregation packet with bogus
				// lengths), then the real frame with junk NAL units mixed in.
				if junk, err := vEnc.Encode([][]byte{garbageNALU(c.codec, rng)}); err == nil {
					for _, p := range junk {
						p.Timestamp = ts
						_ = ss.stream.WritePacketRTP(vMedia, p)
					}
				}
				au = junkAU(c.codec, au, rng)
			}
			pkts, err := vEnc.Encode(au)
			if err != nil {
				continue
			}
			copies := 1
			if dups > 0 {
				dups--
				copies = 2
			}
			for i := range copies {
				if i > 0 { // a duplicate: same frame and timestamp, new sequence numbers
					if pkts, err = vEnc.Encode(au); err != nil {
						break
					}
				}
				for _, p := range pkts {
					p.Timestamp = ts
					if err := ss.stream.WritePacketRTP(vMedia, p); err != nil {
						return
					}
				}
			}
			frames++
			ss.cam.sent.Add(1)
		}
	}
}

// garbageNALU returns an aggregation NAL unit whose inner lengths point past
// its end, which RTP depacketizers must reject.
func garbageNALU(codec string, rng *rand.Rand) []byte {
	b := make([]byte, 12)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if codec == "h265" {
		b[0], b[1], b[2], b[3] = 48<<1, 1, 0xff, 0xff // AP, first size 65535
	} else {
		b[0], b[1], b[2] = 24, 0xff, 0xff // STAP-A, first size 65535
	}
	return b
}

// junkAU returns a copy of au with an unspecified-type NAL unit of random
// bytes and, for H.264, an unparsable SPS prepended.
func junkAU(codec string, au [][]byte, rng *rand.Rand) [][]byte {
	junk := make([]byte, 20)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	out := make([][]byte, 0, len(au)+2)
	if codec == "h265" {
		junk[0], junk[1] = 41<<1, 1 // reserved NAL type 41
		out = append(out, junk)
	} else {
		junk[0] = 0 // unspecified NAL type
		out = append(out, junk, []byte{0x67, 0xff, 0xff, 0xff})
	}
	return append(out, au...)
}
