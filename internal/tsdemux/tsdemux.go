// Package tsdemux reads the committed MPEG-TS test clips into PES packets.
// It is for tests and benchmarks only.
package tsdemux

import (
	"fmt"
	"os"
)

// The mediacommon MPEG-TS reader needs github.com/asticode/go-astits, which
// go.mod does not carry, so the tests read the committed clips with this
// minimal demuxer: PAT, PMT and PES with PTS/DTS, nothing more.

type StreamType byte

const (
	H264 StreamType = 0x1b
	H265 StreamType = 0x24
	AAC  StreamType = 0x0f
)

// PES is one reassembled PES packet of a supported stream.
type PES struct {
	Type     StreamType
	PTS, DTS int64 // 90 kHz
	Data     []byte
}

// Read returns the PES packets of the supported elementary streams in
// file order.
func Read(path string) ([]PES, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pmtPID := -1
	types := map[int]StreamType{}
	bufs := map[int][]byte{}
	var out []PES
	flush := func(pid int) error {
		buf := bufs[pid]
		delete(bufs, pid)
		if len(buf) == 0 {
			return nil
		}
		p, err := parsePES(buf)
		if err != nil {
			return fmt.Errorf("pid %d: %w", pid, err)
		}
		p.Type = types[pid]
		out = append(out, p)
		return nil
	}
	for off := 0; off+188 <= len(b); off += 188 {
		pkt := b[off : off+188]
		if pkt[0] != 0x47 {
			return nil, fmt.Errorf("lost sync at %d", off)
		}
		pusi := pkt[1]&0x40 != 0
		pid := int(pkt[1]&0x1f)<<8 | int(pkt[2])
		afc := (pkt[3] >> 4) & 3
		if afc&1 == 0 {
			continue
		}
		pl := pkt[4:]
		if afc&2 != 0 {
			pl = pkt[5+int(pkt[4]):]
		}
		switch {
		case pid == 0 && pusi:
			s := pl[1+int(pl[0]):]
			n := int(s[1]&0xf)<<8 | int(s[2])
			for i := 8; i+4 <= 3+n-4; i += 4 {
				if prog := int(s[i])<<8 | int(s[i+1]); prog != 0 {
					pmtPID = int(s[i+2]&0x1f)<<8 | int(s[i+3])
					break
				}
			}
		case pid == pmtPID && pusi:
			s := pl[1+int(pl[0]):]
			n := int(s[1]&0xf)<<8 | int(s[2])
			i := 12 + (int(s[10]&0xf)<<8 | int(s[11]))
			for i+5 <= 3+n-4 {
				es := int(s[i+1]&0x1f)<<8 | int(s[i+2])
				switch t := StreamType(s[i]); t {
				case H264, H265, AAC:
					types[es] = t
				}
				i += 5 + (int(s[i+3]&0xf)<<8 | int(s[i+4]))
			}
		default:
			if _, ok := types[pid]; !ok {
				continue
			}
			if pusi {
				if err := flush(pid); err != nil {
					return nil, err
				}
				bufs[pid] = append([]byte(nil), pl...)
			} else if bufs[pid] != nil {
				bufs[pid] = append(bufs[pid], pl...)
			}
		}
	}
	for pid := range bufs {
		if err := flush(pid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parsePES(b []byte) (PES, error) {
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return PES{}, fmt.Errorf("bad PES start")
	}
	flags := b[7] >> 6
	hl := int(b[8])
	if len(b) < 9+hl {
		return PES{}, fmt.Errorf("short PES header")
	}
	var p PES
	if flags&2 != 0 {
		p.PTS = tsTimestamp(b[9:])
		p.DTS = p.PTS
	}
	if flags == 3 {
		p.DTS = tsTimestamp(b[14:])
	}
	p.Data = b[9+hl:]
	if n := int(b[4])<<8 | int(b[5]); n != 0 && 6+n <= len(b) {
		p.Data = b[9+hl : 6+n]
	}
	return p, nil
}

func tsTimestamp(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}
