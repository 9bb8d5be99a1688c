package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/buddyrec/buddyrec/internal/fragment"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// isDiskFull reports whether err means the file system ran out of space.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// codecName is the short name of a codec used in the index ("h264+aac").
func codecName(c mp4.Codec) string {
	switch c.(type) {
	case *mp4.CodecH264:
		return "h264"
	case *mp4.CodecH265:
		return "h265"
	case *mp4.CodecMPEG4Audio:
		return "aac"
	case *mp4.CodecOpus:
		return "opus"
	case *mp4.CodecLPCM:
		return "lpcm"
	case *mp4.CodecAV1:
		return "av1"
	case *mp4.CodecVP9:
		return "vp9"
	case *mp4.CodecMJPEG:
		return "mjpeg"
	case *mp4.CodecAC3:
		return "ac3"
	case *mp4.CodecMPEG1Audio:
		return "mp3"
	default:
		return "unknown"
	}
}

func codecString(tracks []*fmp4.InitTrack) string {
	names := make([]string, len(tracks))
	for i, t := range tracks {
		names[i] = codecName(t.Codec)
	}
	return strings.Join(names, "+")
}

// marshalInit encodes the init segment (ftyp+moov) and returns the offset
// of mvhd's 32-bit duration field, or -1 when it cannot be located.
func marshalInit(init *fmp4.Init) ([]byte, int64, error) {
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, -1, err
	}
	b := buf.Bytes()
	return b, mvhdDurationOffset(b), nil
}

// boxHeader reads an ISO-BMFF box header at b[0:]; it returns the box
// size, the type and the header length, or ok=false if it is incomplete.
func boxHeader(b []byte) (size uint64, typ string, hdr int, ok bool) {
	if len(b) < 8 {
		return 0, "", 0, false
	}
	size = uint64(binary.BigEndian.Uint32(b))
	typ = string(b[4:8])
	hdr = 8
	if size == 1 {
		if len(b) < 16 {
			return 0, "", 0, false
		}
		size = binary.BigEndian.Uint64(b[8:])
		hdr = 16
	}
	if size < uint64(hdr) {
		return 0, "", 0, false
	}
	return size, typ, hdr, true
}

// mvhdDurationOffset finds mvhd (version 0, 1000 Hz as mediacommon writes
// it) in an init segment and returns the offset of its duration field.
func mvhdDurationOffset(b []byte) int64 {
	pos := uint64(0)
	for pos < uint64(len(b)) {
		size, typ, hdr, ok := boxHeader(b[pos:])
		if !ok || pos+size > uint64(len(b)) {
			return -1
		}
		if typ == "moov" {
			c := pos + uint64(hdr)
			sz, ct, ch, ok := boxHeader(b[c:])
			if !ok || ct != "mvhd" || c+sz > uint64(len(b)) || b[c+uint64(ch)] != 0 {
				return -1
			}
			return int64(c) + int64(ch) + 16 // version/flags, creation, modification, timescale
		}
		pos += size
	}
	return -1
}

func patchMvhdDuration(f io.WriterAt, off int64, d time.Duration) error {
	if off < 0 {
		return nil
	}
	var v [4]byte
	ms := d.Milliseconds()
	if ms < 0 {
		ms = 0
	}
	if ms > 0xFFFFFFFF {
		ms = 0xFFFFFFFF
	}
	binary.BigEndian.PutUint32(v[:], uint32(ms))
	_, err := f.WriteAt(v[:], off)
	return err
}

// scanResult is what recovery learns from a segment file.
type scanResult struct {
	codec     string
	goodSize  int64         // bytes up to the end of the last complete fragment
	duration  time.Duration // of the driving track over complete fragments
	fragments int
	mvhdOff   int64
}

// scanSegment parses a segment file: the init segment and then moof+mdat
// pairs. It stops at the first incomplete or unparsable fragment, which is
// the torn tail a crash leaves behind.
func scanSegment(path string) (scanResult, error) {
	res := scanResult{mvhdOff: -1}
	data, err := os.ReadFile(path)
	if err != nil {
		return res, err
	}
	// init: ftyp + moov
	pos := uint64(0)
	initEnd := uint64(0)
	for pos < uint64(len(data)) {
		size, typ, _, ok := boxHeader(data[pos:])
		if !ok || pos+size > uint64(len(data)) {
			break
		}
		pos += size
		if typ == "moov" {
			initEnd = pos
			break
		}
	}
	if initEnd == 0 {
		return res, fmt.Errorf("no complete init segment")
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(data[:initEnd])); err != nil {
		return res, fmt.Errorf("parse init: %w", err)
	}
	if len(init.Tracks) == 0 {
		return res, fmt.Errorf("init has no tracks")
	}
	res.codec = codecString(init.Tracks)
	res.mvhdOff = mvhdDurationOffset(data[:initEnd])
	res.goodSize = int64(initEnd)

	drive := init.Tracks[0]
	for _, t := range init.Tracks {
		if t.Codec.IsVideo() {
			drive = t
			break
		}
	}

	var end uint64 // end of the driving track in its timescale
	for pos < uint64(len(data)) {
		msize, mtyp, _, ok := boxHeader(data[pos:])
		if !ok || mtyp != "moof" || pos+msize > uint64(len(data)) {
			break
		}
		dpos := pos + msize
		dsize, dtyp, _, ok := boxHeader(data[dpos:])
		if !ok || dtyp != "mdat" || dpos+dsize > uint64(len(data)) {
			break
		}
		var parts fmp4.Parts
		if err := parts.Unmarshal(data[pos : dpos+dsize]); err != nil || len(parts) != 1 {
			break
		}
		for _, pt := range parts[0].Tracks {
			if pt.ID != drive.ID {
				continue
			}
			e := pt.BaseTime
			for _, s := range pt.Samples {
				e += uint64(s.Duration)
			}
			end = max(end, e)
		}
		pos = dpos + dsize
		res.goodSize = int64(pos)
		res.fragments++
	}
	res.duration = ticksToDuration(int64(end), int64(drive.TimeScale))
	return res, nil
}

// ticksToDuration converts a timestamp in units of ts per second to a
// duration without overflowing for large values.
func ticksToDuration(v, ts int64) time.Duration {
	if ts <= 0 {
		return 0
	}
	return time.Duration(v/ts)*time.Second + time.Duration((v%ts)*int64(time.Second)/ts)
}

// durationToTicks is the inverse of ticksToDuration.
func durationToTicks(d time.Duration, ts int64) int64 {
	s := int64(d / time.Second)
	r := int64(d % time.Second)
	return s*ts + r*ts/int64(time.Second)
}

// sortedDirNames lists the entries of dir sorted by name; a missing dir is
// empty.
func sortedDirNames(dir string, wantDir bool) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, de := range des {
		if de.IsDir() == wantDir {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// partTrack is one track's samples in a fragment.
type partTrack = fragment.Track[partSample]

// partSample is one sample of a fragment being written: the fields of
// mediacommon's sample (whose Payload is unused), and the payload as the
// Writer was given it (data's Payload or Pieces).
type partSample struct {
	fmp4.Sample
	data Sample
	size uint32
}

func newPartSample(s fmp4.Sample, data Sample) partSample {
	s.Payload = nil
	return partSample{Sample: s, data: data, size: uint32(data.Size())}
}

// sampleFields reads what a fragment header says about a recorded sample.
func sampleFields(s *partSample) fragment.Fields {
	return fragment.Fields{Duration: s.Duration, Size: s.size, PTSOffset: s.PTSOffset, NonSync: s.IsNonSyncSample}
}

// appendPartHeader appends the moof and the mdat header of one fragment to
// buf: the same bytes as mediacommon's fmp4.Part.Marshal (a test checks
// this) without its per-sample allocations.
func appendPartHeader(buf []byte, seq uint32, tracks []partTrack) []byte {
	return fragment.AppendHeader(buf, seq, tracks, sampleFields)
}

// partBuffers lists a fragment as the header followed by every payload in
// mdat order, so the writer hands the payloads to the kernel as they are
// instead of copying a second second of video per camera into one buffer.
func partBuffers(bufs net.Buffers, header []byte, tracks []partTrack) net.Buffers {
	bufs = append(bufs, header)
	for _, t := range tracks {
		for i := range t.Samples {
			bufs = t.Samples[i].data.AppendBuffers(bufs)
		}
	}
	return bufs
}
