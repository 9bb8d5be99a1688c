// Package fragment writes the header of an fMP4 fragment (moof, then the
// mdat box header) in the one layout buddyrec uses everywhere: storage
// records it and export re-emits it. It is written by hand because
// mediacommon's fmp4.Part.Marshal goes through go-mp4's reflection, which
// allocates dozens of objects per sample on the recording hot path.
//
// Layout: mfhd; per track a traf with tfhd (default-base-is-moof), tfdt
// version 1 and trun version 1 carrying per-sample duration and size, plus
// sample flags and composition offsets only when some sample needs them.
// Sample data follows the header in track order.
package fragment

import "encoding/binary"

// Fields are what a fragment header says about one sample.
type Fields struct {
	Duration  uint32
	Size      uint32
	PTSOffset int32
	NonSync   bool
}

// Track is one track of a fragment; S is the caller's sample type, read
// through a Fields accessor so callers keep their own sample structs.
type Track[S any] struct {
	ID       uint32
	BaseTime uint64 // tfdt, in the track's time scale
	Samples  []S
}

// AppendHeader appends the moof and the mdat box header of one fragment to
// dst; the caller writes the samples' data after it, in track order.
func AppendHeader[S any](dst []byte, seq uint32, tracks []Track[S], fields func(*S) Fields) []byte {
	be := binary.BigEndian
	moofStart := len(dst)
	dst = be.AppendUint32(dst, 0) // moof size, patched below
	dst = append(dst, "moof"...)
	dst = be.AppendUint32(dst, 16)
	dst = append(dst, "mfhd"...)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, seq)

	type fix struct{ pos, dataOff int }
	var fixesArr [8]fix
	fixes := fixesArr[:0]
	dataSize := 0
	for ti := range tracks {
		t := &tracks[ti]
		flags := uint32(0x001 | 0x100 | 0x200) // data offset, duration, size
		for i := range t.Samples {
			f := fields(&t.Samples[i])
			if f.NonSync {
				flags |= 0x400
			}
			if f.PTSOffset != 0 {
				flags |= 0x800
			}
		}
		entry := 8
		if flags&0x400 != 0 {
			entry += 4
		}
		if flags&0x800 != 0 {
			entry += 4
		}
		trunSize := 20 + entry*len(t.Samples)
		dst = be.AppendUint32(dst, uint32(8+16+20+trunSize))
		dst = append(dst, "traf"...)
		dst = be.AppendUint32(dst, 16)
		dst = append(dst, "tfhd"...)
		dst = be.AppendUint32(dst, 0x00020000) // default-base-is-moof
		dst = be.AppendUint32(dst, t.ID)
		dst = be.AppendUint32(dst, 20)
		dst = append(dst, "tfdt"...)
		dst = be.AppendUint32(dst, 0x01000000) // version 1
		dst = be.AppendUint64(dst, t.BaseTime)
		dst = be.AppendUint32(dst, uint32(trunSize))
		dst = append(dst, "trun"...)
		dst = be.AppendUint32(dst, 0x01000000|flags)
		dst = be.AppendUint32(dst, uint32(len(t.Samples)))
		fixes = append(fixes, fix{pos: len(dst) - moofStart, dataOff: dataSize})
		dst = be.AppendUint32(dst, 0) // data offset, patched below
		for i := range t.Samples {
			f := fields(&t.Samples[i])
			dst = be.AppendUint32(dst, f.Duration)
			dst = be.AppendUint32(dst, f.Size)
			if flags&0x400 != 0 {
				var sf uint32
				if f.NonSync {
					sf = 1 << 16
				}
				dst = be.AppendUint32(dst, sf)
			}
			if flags&0x800 != 0 {
				dst = be.AppendUint32(dst, uint32(f.PTSOffset))
			}
			dataSize += int(f.Size)
		}
	}
	moofSize := len(dst) - moofStart
	be.PutUint32(dst[moofStart:], uint32(moofSize))
	for _, f := range fixes {
		be.PutUint32(dst[moofStart+f.pos:], uint32(moofSize+8+f.dataOff))
	}
	dst = be.AppendUint32(dst, uint32(8+dataSize))
	dst = append(dst, "mdat"...)
	return dst
}
