package relay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// The wire format of a relayed camera is a sequence of records, each a kind
// byte, a 4-byte big-endian body length and the body:
//
//	'S' stream: u16 len, home; u16 len, camera; the fMP4 init segment
//	           (ftyp+moov) describing the tracks. Every frame after it
//	           belongs to this stream, until the next 'S'.
//	'F' frame:  u8 track, u8 flags (1 = sync), i64 DTS, i32 PTS offset,
//	           i64 arrival (Unix ns), then the payload (AVCC or raw AAC).
//
// The init segment carries the codec parameters in the same encoding the
// segment files use, so no second description of codecs exists.
const (
	kindStream = 'S'
	kindFrame  = 'F'

	// maxRecord bounds one record: a frame larger than this is refused, so
	// a confused peer cannot make the reader allocate without bound.
	maxRecord = 16 << 20

	frameHeader = 1 + 1 + 8 + 4 + 8
)

// ContentType is the media type of a relay response.
const ContentType = "application/x-buddyrec-frames"

// initOf is the fMP4 init segment of a stream (track IDs are index+1, as
// storage writes them).
func initOf(st *storage.Stream) *fmp4.Init {
	init := &fmp4.Init{}
	for i, t := range st.Tracks {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: i + 1, TimeScale: t.TimeScale, Codec: t.Codec})
	}
	return init
}

// encoder writes records to w.
type encoder struct {
	w    io.Writer
	buf  []byte
	hdr  [frameHeader]byte
	body [][]byte // a frame's header and payload buffers, reused
}

func (e *encoder) record(kind byte, body ...[]byte) error {
	n := 0
	for _, b := range body {
		n += len(b)
	}
	e.buf = append(e.buf[:0], kind)
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	for _, b := range body {
		e.buf = append(e.buf, b...)
	}
	_, err := e.w.Write(e.buf)
	return err
}

func (e *encoder) stream(st *storage.Stream) error {
	var ib seekablebuffer.Buffer
	if err := initOf(st).Marshal(&ib); err != nil {
		return fmt.Errorf("encode stream of %s: %w", st.Camera, err)
	}
	var hdr []byte
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(st.Home)))
	hdr = append(hdr, st.Home...)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(st.Camera)))
	hdr = append(hdr, st.Camera...)
	return e.record(kindStream, hdr, ib.Bytes())
}

func (e *encoder) frame(s storage.Sample) error {
	e.hdr = [frameHeader]byte{}
	h := &e.hdr
	h[0] = byte(s.Track)
	if s.Sync {
		h[1] = 1
	}
	binary.BigEndian.PutUint64(h[2:], uint64(s.DTS))
	binary.BigEndian.PutUint32(h[10:], uint32(s.PTSOffset))
	var arrival int64
	if !s.Arrival.IsZero() {
		arrival = s.Arrival.UnixNano()
	}
	binary.BigEndian.PutUint64(h[14:], uint64(arrival))
	e.body = s.AppendBuffers(append(e.body[:0], h[:]))
	err := e.record(kindFrame, e.body...)
	clear(e.body) // hold no frame past its record
	return err
}

// decoder reads records from r and rebuilds frames; each 'S' record makes a
// new *storage.Stream, as a reconnect does at the recorder.
type decoder struct {
	r   *bufio.Reader
	cur *storage.Stream
}

func newDecoder(r io.Reader) *decoder { return &decoder{r: bufio.NewReaderSize(r, 64<<10)} }

// next returns the next frame, skipping stream records after applying them.
func (d *decoder) next() (recorder.Frame, error) {
	for {
		var h [5]byte
		if _, err := io.ReadFull(d.r, h[:]); err != nil {
			return recorder.Frame{}, err
		}
		n := binary.BigEndian.Uint32(h[1:])
		if n > maxRecord {
			return recorder.Frame{}, fmt.Errorf("relay record of %d bytes exceeds %d", n, maxRecord)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(d.r, body); err != nil {
			return recorder.Frame{}, fmt.Errorf("relay record: %w", err)
		}
		switch h[0] {
		case kindStream:
			st, err := decodeStream(body)
			if err != nil {
				return recorder.Frame{}, err
			}
			d.cur = st
		case kindFrame:
			if d.cur == nil {
				return recorder.Frame{}, errors.New("relay frame before its stream")
			}
			if len(body) < frameHeader {
				return recorder.Frame{}, errors.New("short relay frame")
			}
			s := storage.Sample{
				Track:     int(body[0]),
				Sync:      body[1]&1 != 0,
				DTS:       int64(binary.BigEndian.Uint64(body[2:])),
				PTSOffset: int32(binary.BigEndian.Uint32(body[10:])),
				Payload:   body[frameHeader:],
			}
			if ns := int64(binary.BigEndian.Uint64(body[14:])); ns != 0 {
				s.Arrival = time.Unix(0, ns)
			}
			if s.Track >= len(d.cur.Tracks) {
				return recorder.Frame{}, fmt.Errorf("relay frame of track %d; stream has %d", s.Track, len(d.cur.Tracks))
			}
			return recorder.Frame{Stream: d.cur, Sample: s}, nil
		default:
			return recorder.Frame{}, fmt.Errorf("unknown relay record kind %q", h[0])
		}
	}
}

func decodeStream(b []byte) (*storage.Stream, error) {
	str := func() (string, error) {
		if len(b) < 2 {
			return "", errors.New("short relay stream record")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", errors.New("short relay stream record")
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, nil
	}
	home, err := str()
	if err != nil {
		return nil, err
	}
	cam, err := str()
	if err != nil {
		return nil, err
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("relay stream of %s: %w", cam, err)
	}
	st := &storage.Stream{Camera: cam, Home: home}
	for _, t := range init.Tracks {
		st.Tracks = append(st.Tracks, storage.Track{Codec: t.Codec, TimeScale: t.TimeScale})
	}
	return st, nil
}
