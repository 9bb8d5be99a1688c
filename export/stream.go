package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// streamer writes one export: the init segment (its creation time the
// wall clock of the first frame), then the fragments of each piece with
// decode times rewritten onto one timeline that is real time: a piece that
// continues the previous one follows it without a jump, a piece after a
// gap goes where its wall clock says, so the hole stays a hole. Decode
// times never go back, so no two samples of a track share a time. Each
// fragment is preceded by a prft box giving the wall clock of its first
// sample, and sequence numbers count up from 1. It holds one fragment at a
// time, so memory does not grow with the length of the range.
type streamer struct {
	w       io.Writer
	flush   func()
	init    *fmp4.Init
	origin  time.Time // wall clock of the first frame: output time 0
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

func newStreamer(w io.Writer, init *fmp4.Init, origin time.Time) *streamer {
	s := &streamer{w: w, init: init, origin: origin, driveID: uint32(driveTrack(init).ID),
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
	b, err = setCreationTime(b, s.origin)
	if err != nil {
		return err
	}
	_, err = s.w.Write(b)
	return err
}

// lastKeyframeBefore scans the fragment headers of a segment (starting at
// wall clock segStart) from off for the last keyframe of track id at or
// before from. It returns that keyframe's fragment offset and decode time;
// when from is before the first keyframe, the segment's beginning.
func lastKeyframeBefore(src io.ReaderAt, off, limit int64, id uint32, ts int64, segStart, from time.Time) (int64, uint64, error) {
	var f fragment
	bestOff, bestDTS := off, uint64(0)
	for pos := off; ; {
		next, err := readFragment(src, pos, limit, &f, true)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		t := f.track(id)
		if t != nil && len(t.samples) > 0 {
			if segStart.Add(ticksToDuration(int64(t.samples[0].dts), ts)).After(from) {
				break // this and later fragments start after from
			}
			for _, smp := range t.samples {
				if !smp.nonSync && !segStart.Add(ticksToDuration(int64(smp.dts), ts)).After(from) {
					bestOff, bestDTS = pos, smp.dts
				}
			}
		}
		pos = next
	}
	return bestOff, bestDTS, nil
}

// nearestKeyframe scans the fragment headers of a segment (starting at
// wall clock segStart) from off for the keyframe of track id whose wall
// clock is nearest at, within window; ok is false when there is none.
func nearestKeyframe(src io.ReaderAt, off, limit int64, id uint32, ts int64, segStart, at time.Time, window time.Duration) (best time.Time, ok bool, err error) {
	var f fragment
	dist := window + 1
	for pos := off; ; {
		next, err := readFragment(src, pos, limit, &f, true)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return time.Time{}, false, err
		}
		t := f.track(id)
		if t != nil && len(t.samples) > 0 {
			if segStart.Add(ticksToDuration(int64(t.samples[0].dts), ts)).After(at.Add(window)) {
				break // this and later fragments start after the window
			}
			for _, smp := range t.samples {
				if smp.nonSync {
					continue
				}
				w := segStart.Add(ticksToDuration(int64(smp.dts), ts))
				if d := w.Sub(at).Abs(); d <= window && d < dist {
					best, dist, ok = w, d, true
				}
			}
		}
		pos = next
	}
	return best, ok, nil
}

// streamPiece writes the fragments of p whose samples fall in
// [start keyframe, min(p.to, to)).
func (h *handler) streamPiece(ctx context.Context, s *streamer, p *planned, to time.Time) error {
	if !p.to.After(p.startWall) {
		return nil
	}
	src, err := h.openSource(ctx, &p.candidate)
	if err != nil {
		return err
	}
	defer src.Close()
	off, m0 := p.startOff, p.startDTS
	stop := minTime(p.to, to)
	m0ns := ticksToDuration(int64(m0), s.scales[s.driveID])
	// Where the piece's start keyframe goes on the output timeline.
	outStart := s.outEnd
	if p.afterGap {
		outStart = max(outStart, p.startWall.Sub(s.origin))
	}
	shift := outStart - m0ns // output time = media time + shift
	driveEnd := outStart
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
		var ref prft
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
			base := kept0DTS(kept) - m0t + uint64(durationToTicks(outStart, ts))
			for len(kept) > 0 && base < s.lastEnd[t.id] && !drive {
				// audio overlapping what the previous piece played
				base += uint64(kept[0].dur)
				kept = kept[1:]
			}
			if len(kept) == 0 {
				continue
			}
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
			if drive || ref.track == 0 {
				ref = prft{track: t.id, media: base, wall: p.seg.Start.Add(ticksToDuration(int64(kept[0].dts), ts))}
			}
			s.tracks = append(s.tracks, outTrack{ID: t.id, BaseTime: base, Samples: kept})
		}
		if len(s.tracks) > 0 {
			s.seq++
			s.buf = appendPrft(s.buf[:0], ref)
			s.buf = appendFragment(s.buf, s.seq, s.tracks, s.frag.buf)
			if _, err := s.w.Write(s.buf); err != nil {
				return fmt.Errorf("write export: %w", err)
			}
			if !s.started {
				s.started = true
				if s.flush != nil {
					s.flush() // for time to first byte
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

func kept0DTS(kept []sample) uint64 {
	if len(kept) == 0 {
		return 0
	}
	return kept[0].dts
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
