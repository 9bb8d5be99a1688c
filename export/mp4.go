package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	fragw "github.com/buddyrec/buddyrec/internal/fragment"
	"io"
	"reflect"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// The init segment goes through mediacommon (fmp4.Init) once per piece: it
// parses codec parameters we must compare, and re-marshalling it drops the
// segment's own mvhd duration, which would otherwise tell players the whole
// export lasts one segment. Fragments are walked by hand instead: go-mp4's
// reflection allocates dozens of objects per sample, and an hour of footage
// is ~100k samples, while a moof is a handful of fixed-layout boxes.

// maxInitSize bounds the ftyp+moov prefix we read from a segment.
const maxInitSize = 1 << 20

// maxFragmentSize bounds one moof+mdat; storage cuts parts at about a
// second, so anything larger is corrupt input, not footage.
const maxFragmentSize = 64 << 20

var errCorrupt = errors.New("corrupt fragment")

// readBoxHeader reads an ISO-BMFF box header at off and returns the box size
// and type.
func readBoxHeader(r io.ReaderAt, off int64) (size int64, typ string, err error) {
	var h [16]byte
	n, err := r.ReadAt(h[:8], off)
	if n < 8 {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, "", err
	}
	size = int64(binary.BigEndian.Uint32(h[:4]))
	typ = string(h[4:8])
	if size == 1 {
		if n, err := r.ReadAt(h[8:16], off+8); n < 8 {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, "", err
		}
		size = int64(binary.BigEndian.Uint64(h[8:16]))
		if size < 16 {
			return 0, "", fmt.Errorf("box %q: size %d: %w", typ, size, errCorrupt)
		}
	} else if size < 8 {
		return 0, "", fmt.Errorf("box %q: size %d: %w", typ, size, errCorrupt)
	}
	return size, typ, nil
}

// readInit reads ftyp+moov at the start of a segment. It returns the parsed
// init and the offset of the first fragment.
func readInit(r io.ReaderAt) (*fmp4.Init, int64, error) {
	off := int64(0)
	for {
		size, typ, err := readBoxHeader(r, off)
		if err != nil {
			return nil, 0, fmt.Errorf("read init: %w", err)
		}
		off += size
		if off > maxInitSize {
			return nil, 0, fmt.Errorf("read init: no moov in the first %d bytes", maxInitSize)
		}
		if typ == "moov" {
			break
		}
	}
	buf := make([]byte, off)
	if n, err := r.ReadAt(buf, 0); n < len(buf) {
		return nil, 0, fmt.Errorf("read init: %w", err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(buf)); err != nil {
		return nil, 0, fmt.Errorf("parse init: %w", err)
	}
	if len(init.Tracks) == 0 {
		return nil, 0, errors.New("parse init: no tracks")
	}
	return &init, off, nil
}

// marshalInit encodes an init segment.
func marshalInit(init *fmp4.Init) ([]byte, error) {
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("marshal init: %w", err)
	}
	return buf.Bytes(), nil
}

// sameTracks reports whether two inits describe the same tracks with the
// same codec parameters, i.e. whether fragments of one play under the
// other's init.
func sameTracks(a, b *fmp4.Init) bool {
	if len(a.Tracks) != len(b.Tracks) {
		return false
	}
	for i := range a.Tracks {
		x, y := a.Tracks[i], b.Tracks[i]
		if x.ID != y.ID || x.TimeScale != y.TimeScale || !reflect.DeepEqual(x.Codec, y.Codec) {
			return false
		}
	}
	return true
}

// driveTrack is the track whose keyframes decide where an export may start:
// the first video track, else the first track (as storage segments).
func driveTrack(init *fmp4.Init) *fmp4.InitTrack {
	for _, t := range init.Tracks {
		if t.Codec.IsVideo() {
			return t
		}
	}
	return init.Tracks[0]
}

// sample is one sample of a parsed fragment; off is its position in the
// fragment buffer.
type sample struct {
	dts      uint64 // decode time in the track's timescale
	dur      uint32
	ptsOff   int32
	nonSync  bool
	off, len int
}

// traf is one track of a parsed fragment.
type traf struct {
	id      uint32
	samples []sample
}

// fragment is one moof+mdat read into buf.
type fragment struct {
	buf   []byte
	trafs []traf
}

// track returns the traf of track id, or nil.
func (f *fragment) track(id uint32) *traf {
	for i := range f.trafs {
		if f.trafs[i].id == id {
			return &f.trafs[i]
		}
	}
	return nil
}

// readFragment reads the moof+mdat at off (bounded by limit) into f, reusing
// its buffers, and returns the offset after it. With headerOnly it reads
// just the moof (enough for timestamps and keyframe flags, when scanning
// for a start point). io.EOF means no complete fragment starts at off: the
// end of the file, or the torn tail of a segment still being written.
func readFragment(r io.ReaderAt, off, limit int64, f *fragment, headerOnly bool) (int64, error) {
	if off+8 > limit {
		return 0, io.EOF
	}
	msize, mtyp, err := readBoxHeader(r, off)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, io.EOF
		}
		return 0, err
	}
	if mtyp != "moof" {
		return 0, fmt.Errorf("box %q at %d where moof expected: %w", mtyp, off, errCorrupt)
	}
	if off+msize+8 > limit {
		return 0, io.EOF
	}
	dsize, dtyp, err := readBoxHeader(r, off+msize)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, io.EOF
		}
		return 0, err
	}
	if dtyp != "mdat" {
		return 0, fmt.Errorf("box %q at %d where mdat expected: %w", dtyp, off+msize, errCorrupt)
	}
	total := msize + dsize
	if total > maxFragmentSize {
		return 0, fmt.Errorf("fragment at %d is %d bytes: %w", off, total, errCorrupt)
	}
	if off+total > limit {
		return 0, io.EOF
	}
	n := total
	if headerOnly {
		n = msize
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if n, err := r.ReadAt(f.buf, off); n < len(f.buf) {
		if err == nil || errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("read fragment at %d: %w", off, err)
	}
	if err := f.parse(int(msize), int(total)); err != nil {
		return 0, fmt.Errorf("fragment at %d: %w", off, err)
	}
	return off + total, nil
}

// parse walks moof (the first msize bytes of f.buf): per traf tfhd, tfdt
// and trun. Sample data positions are resolved against the moof start
// (default-base-is-moof, as storage and mediacommon write); every sample is
// checked to lie inside the fragment, so bad input cannot make us read
// outside it.
func (f *fragment) parse(msize, total int) error {
	be := binary.BigEndian
	b := f.buf
	f.trafs = f.trafs[:0]
	if msize < 8 || msize > len(b) {
		return errCorrupt
	}
	return childrenOf(b[8:msize], func(typ string, body []byte) error {
		if typ != "traf" {
			return nil
		}
		if len(f.trafs) < cap(f.trafs) { // reuse the sample slice of an earlier fragment
			f.trafs = f.trafs[:len(f.trafs)+1]
		} else {
			f.trafs = append(f.trafs, traf{})
		}
		t := &f.trafs[len(f.trafs)-1]
		t.id = 0
		t.samples = t.samples[:0]
		var (
			defDur, defSize, defFlags uint32
			baseTime                  uint64
			haveTfhd                  bool
		)
		return childrenOf(body, func(typ string, body []byte) error {
			switch typ {
			case "tfhd":
				if len(body) < 8 {
					return errCorrupt
				}
				flags := be.Uint32(body) & 0xFFFFFF
				t.id = be.Uint32(body[4:])
				p := 8
				need := func(n int) bool { return p+n <= len(body) }
				if flags&0x1 != 0 {
					// an absolute file offset; storage and mediacommon
					// never write one
					return errors.New("tfhd base-data-offset is not supported")
				}
				if flags&0x2 != 0 {
					p += 4
				}
				if flags&0x8 != 0 {
					if !need(4) {
						return errCorrupt
					}
					defDur = be.Uint32(body[p:])
					p += 4
				}
				if flags&0x10 != 0 {
					if !need(4) {
						return errCorrupt
					}
					defSize = be.Uint32(body[p:])
					p += 4
				}
				if flags&0x20 != 0 {
					if !need(4) {
						return errCorrupt
					}
					defFlags = be.Uint32(body[p:])
				}
				haveTfhd = true
			case "tfdt":
				if len(body) < 8 {
					return errCorrupt
				}
				if body[0] == 1 {
					if len(body) < 12 {
						return errCorrupt
					}
					baseTime = be.Uint64(body[4:])
				} else {
					baseTime = uint64(be.Uint32(body[4:]))
				}
			case "trun":
				if !haveTfhd || len(body) < 8 {
					return errCorrupt
				}
				flags := be.Uint32(body) & 0xFFFFFF
				count := int(be.Uint32(body[4:]))
				p := 8
				dataOff := int64(0) // default-base-is-moof
				if flags&0x1 != 0 {
					if p+4 > len(body) {
						return errCorrupt
					}
					dataOff += int64(int32(be.Uint32(body[p:])))
					p += 4
				}
				firstFlags, haveFirst := uint32(0), false
				if flags&0x4 != 0 {
					if p+4 > len(body) {
						return errCorrupt
					}
					firstFlags, haveFirst = be.Uint32(body[p:]), true
					p += 4
				}
				entry := 0
				for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
					if flags&bit != 0 {
						entry += 4
					}
				}
				if count < 0 || p+entry*count > len(body) {
					return errCorrupt
				}
				dts := baseTime
				if n := len(t.samples); n > 0 { // a second trun continues the first
					last := t.samples[n-1]
					dts = last.dts + uint64(last.dur)
				}
				for i := 0; i < count; i++ {
					s := sample{dts: dts, dur: defDur, len: int(defSize)}
					sf := defFlags
					if i == 0 && haveFirst {
						sf = firstFlags
					}
					if flags&0x100 != 0 {
						s.dur = be.Uint32(body[p:])
						p += 4
					}
					if flags&0x200 != 0 {
						s.len = int(be.Uint32(body[p:]))
						p += 4
					}
					if flags&0x400 != 0 {
						sf = be.Uint32(body[p:])
						p += 4
					}
					if flags&0x800 != 0 {
						s.ptsOff = int32(be.Uint32(body[p:]))
						p += 4
					}
					s.nonSync = sf&0x10000 != 0
					if dataOff < int64(msize)+8 || dataOff+int64(s.len) > int64(total) {
						return errCorrupt
					}
					s.off = int(dataOff)
					dataOff += int64(s.len)
					dts += uint64(s.dur)
					t.samples = append(t.samples, s)
				}
			}
			return nil
		})
	})
}

// childrenOf calls fn for each box inside body.
func childrenOf(body []byte, fn func(typ string, body []byte) error) error {
	for p := 0; p < len(body); {
		if p+8 > len(body) {
			return errCorrupt
		}
		sz := int(binary.BigEndian.Uint32(body[p:]))
		if sz < 8 || p+sz > len(body) {
			return errCorrupt
		}
		if err := fn(string(body[p+4:p+8]), body[p+8:p+sz]); err != nil {
			return err
		}
		p += sz
	}
	return nil
}

// outTrack is one track of an output fragment: the chosen samples of an
// input traf (positions refer to the input fragment buffer) and their new
// decode time.
type outTrack = fragw.Track[sample]

func sampleFields(s *sample) fragw.Fields {
	return fragw.Fields{Duration: s.dur, Size: uint32(s.len), PTSOffset: s.ptsOff, NonSync: s.nonSync}
}

// appendFragment appends a moof+mdat with sequence number seq to dst,
// copying sample data from src, in the layout storage writes.
func appendFragment(dst []byte, seq uint32, tracks []outTrack, src []byte) []byte {
	dst = fragw.AppendHeader(dst, seq, tracks, sampleFields)
	for _, t := range tracks {
		for _, s := range t.Samples {
			dst = append(dst, src[s.off:s.off+s.len]...)
		}
	}
	return dst
}

// Origins of the clocks MP4 boxes use: NTP timestamps (prft) count from
// 1900, mvhd/tkhd/mdhd times in seconds from 1904, both UTC.
var (
	ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ntpTimestamp is t as a 64-bit NTP timestamp (32.32 fixed point seconds).
func ntpTimestamp(t time.Time) uint64 {
	d := t.Sub(ntpEpoch) // fits: NTP era 0 ends in 2036, Duration in 2192
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// prft is what a ProducerReferenceTimeBox says: media time media of track
// is wall clock wall.
type prft struct {
	track uint32
	media uint64
	wall  time.Time
}

// appendPrft appends a ProducerReferenceTimeBox (ISO/IEC 14496-12 8.16.5,
// version 1) for the fragment that follows it: the first sample of the
// reference track, at decode time media on the export's timeline, arrived
// at the recorder at wall clock wall. Flags 0: the time the sample was
// taken in (for a recorder, its arrival from the camera).
func appendPrft(dst []byte, p prft) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, 32)
	dst = append(dst, "prft"...)
	dst = be.AppendUint32(dst, 0x01000000) // version 1, flags 0
	dst = be.AppendUint32(dst, p.track)
	dst = be.AppendUint64(dst, ntpTimestamp(p.wall))
	dst = be.AppendUint64(dst, p.media)
	return dst
}

// setCreationTime writes t (whole seconds) as the creation and
// modification time of the mvhd, every tkhd and every mdhd of an init
// segment, so the file says when its first frame was recorded.
func setCreationTime(init []byte, t time.Time) ([]byte, error) {
	secs := uint64(max(0, t.Sub(mp4Epoch)/time.Second))
	var walk func(b []byte) error
	walk = func(b []byte) error {
		for p := 0; p < len(b); {
			if p+8 > len(b) {
				return errCorrupt
			}
			sz := int(binary.BigEndian.Uint32(b[p:]))
			if sz < 8 || p+sz > len(b) {
				return errCorrupt
			}
			body := b[p+8 : p+sz]
			switch string(b[p+4 : p+8]) {
			case "moov", "trak", "mdia":
				if err := walk(body); err != nil {
					return err
				}
			case "mvhd", "tkhd", "mdhd":
				switch {
				case len(body) >= 20 && body[0] == 1:
					binary.BigEndian.PutUint64(body[4:], secs)
					binary.BigEndian.PutUint64(body[12:], secs)
				case len(body) >= 12 && body[0] == 0:
					v := uint32(min(secs, 0xFFFFFFFF))
					binary.BigEndian.PutUint32(body[4:], v)
					binary.BigEndian.PutUint32(body[8:], v)
				default:
					return errCorrupt
				}
			}
			p += sz
		}
		return nil
	}
	if err := walk(init); err != nil {
		return nil, fmt.Errorf("set creation time: %w", err)
	}
	return init, nil
}
