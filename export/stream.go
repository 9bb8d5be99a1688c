package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// streamer writes one export: the init segment, then the fragments of each
// piece with decode times rewritten so the output timeline is continuous
// (gaps between pieces are closed up; the gaps header says where they
// were) and sequence numbers counting up from 1. It holds one fragment at
// a time, so memory does not grow with the length of the range.
type streamer struct {
	w       io.Writer
	init    *fmp4.Init
	driveID uint32
	scales  map[uint32]int64

	seq     uint32
	outEnd  time.Duration     // end of the drive track in the output so far
	lastEnd map[uint32]uint64 // per track: end of the output so far, in ticks
	started bool

	frag   fragment
	tracks []outTrack
	buf    []byte
}

func newStreamer(w io.Writer, init *fmp4.Init) *streamer {
	s := &streamer{w: w, init: init, driveID: uint32(driveTrack(init).ID),
		scales: map[uint32]int64{}, lastEnd: map[uint32]uint64{}}
	for _, t := range init.Tracks {
		s.scales[uint32(t.ID)] = int64(t.TimeScale)
	}
	return s
}

func (s *streamer) writeInit() error {
	b, err := marshalInit(s.init)
	if err != nil {
		return err
	}
	_, err = s.w.Write(b)
	return err
}

// startPoint finds where piece p begins: the fragment offset and the drive
// track decode time of its first keyframe. ok is false when the piece has
// no keyframe to start at (startAfter past its last keyframe).
func (s *streamer) startPoint(src source, p *planned) (off int64, m0 uint64, ok bool, err error) {
	if p.mode == startAtBeginning {
		return p.dataOff, 0, true, nil
	}
	ts := s.scales[s.driveID]
	var f fragment
	bestOff, bestDTS, found := p.dataOff, uint64(0), false
	for pos := p.dataOff; ; {
		next, err := readFragment(src, pos, p.limit(), &f, true)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, false, err
		}
		t := f.track(s.driveID)
		if t != nil && len(t.samples) > 0 {
			if p.mode == startBefore && p.seg.Start.Add(ticksToDuration(int64(t.samples[0].dts), ts)).After(p.from) {
				break // this and later fragments start after from
			}
			for _, smp := range t.samples {
				if smp.nonSync {
					continue
				}
				wall := p.seg.Start.Add(ticksToDuration(int64(smp.dts), ts))
				if p.mode == startBefore && !wall.After(p.from) {
					bestOff, bestDTS, found = pos, smp.dts, true
				}
				if p.mode == startAfter && !wall.Before(p.from) {
					return pos, smp.dts, true, nil
				}
			}
		}
		pos = next
	}
	if p.mode == startAfter {
		return 0, 0, false, nil
	}
	if !found { // from is before the first keyframe: start at the beginning
		return p.dataOff, 0, true, nil
	}
	return bestOff, bestDTS, true, nil
}

// streamPiece writes the fragments of p whose samples fall in
// [start keyframe, min(p.to, to)).
func (h *handler) streamPiece(ctx context.Context, s *streamer, p *planned, to time.Time) error {
	src, err := h.openSource(ctx, &p.candidate)
	if err != nil {
		return err
	}
	defer src.Close()
	off, m0, ok, err := s.startPoint(src, p)
	if err != nil {
		return fmt.Errorf("find start in %s: %w", p.seg.File, err)
	}
	if !ok {
		return nil
	}
	stop := minTime(p.to, to)
	m0ns := ticksToDuration(int64(m0), s.scales[s.driveID])
	shift := s.outEnd - m0ns // output time = media time + shift
	driveEnd := s.outEnd
	for {
		next, err := readFragment(src, off, p.limit(), &s.frag, false)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p.seg.File, err)
		}
		off = next
		done := false
		s.tracks = s.tracks[:0]
		for i := range s.frag.trafs {
			t := &s.frag.trafs[i]
			ts, known := s.scales[t.id]
			if !known {
				continue
			}
			drive := t.id == s.driveID
			m0t := uint64(durationToTicks(m0ns, ts))
			// decode times grow, so the samples kept are one run
			i, j := 0, len(t.samples)
			for i < j && (t.samples[i].dts < m0t || (drive && t.samples[i].dts < m0)) {
				i++
			}
			for k := i; k < j; k++ {
				if !p.seg.Start.Add(ticksToDuration(int64(t.samples[k].dts), ts)).Before(stop) {
					j = k
					done = done || drive
				}
			}
			kept := t.samples[i:j]
			if len(kept) == 0 {
				continue
			}
			base := kept[0].dts - m0t + uint64(durationToTicks(s.outEnd, ts))
			if base < s.lastEnd[t.id] { // rounding between timescales
				base = s.lastEnd[t.id]
			}
			end := base
			for _, smp := range kept {
				end += uint64(smp.dur)
			}
			s.lastEnd[t.id] = end
			if drive {
				driveEnd = max(driveEnd, ticksToDuration(int64(kept[len(kept)-1].dts+uint64(kept[len(kept)-1].dur)), ts)+shift)
			}
			s.tracks = append(s.tracks, outTrack{ID: t.id, BaseTime: base, Samples: kept})
		}
		if len(s.tracks) > 0 {
			s.seq++
			s.buf = appendFragment(s.buf[:0], s.seq, s.tracks, s.frag.buf)
			if _, err := s.w.Write(s.buf); err != nil {
				return fmt.Errorf("write export: %w", err)
			}
			if !s.started {
				s.started = true
				if rw, ok := s.w.(http.ResponseWriter); ok {
					http.NewResponseController(rw).Flush() //nolint:errcheck // best effort, for time to first byte
				}
			}
		}
		if done || ctx.Err() != nil {
			break
		}
	}
	s.outEnd = driveEnd
	return ctx.Err()
}

// ticksToDuration converts ticks of a timescale to a duration without
// overflowing for large values.
func ticksToDuration(v, ts int64) time.Duration {
	if ts <= 0 {
		return 0
	}
	return time.Duration(v/ts)*time.Second + time.Duration((v%ts)*int64(time.Second)/ts)
}

func durationToTicks(d time.Duration, ts int64) int64 {
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}
