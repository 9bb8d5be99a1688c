package storage

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	cameraid "github.com/buddyrec/buddyrec/camera"
)

// Limits that close a segment instead of writing bad timestamps.
const (
	maxClockJump  = 2 * time.Second // |wall elapsed - RTP elapsed|
	maxDTSForward = 5 * time.Second // DTS step of one track
	// maxAudioJitter is how far a secondary (audio) track may step back
	// before it counts as a discontinuity; smaller steps drop the sample.
	maxAudioJitter = time.Second
)

// pending is a sample waiting for the next one of its track, which gives
// its duration.
type pending struct {
	dts     int64
	ptsOff  int32
	sync    bool
	data    Sample // only its payload, Payload or Pieces
	arrival time.Time
}

// trackState is the per-track state of a Writer.
type trackState struct {
	ts      int64 // time scale
	video   bool
	hasPend bool
	pend    pending
	lastDur uint32

	// per segment
	segStart int64 // DTS of the segment start in this track's time scale
	written  int64 // duration written to the segment so far (ticks)
	started  bool  // the segment holds a sample of this track

	// per part; reused between parts
	partBase uint64
	samples  []partSample
}

// openSegment is the file a Writer currently appends to.
type openSegment struct {
	sf *syncedFile
	f  File
	e  entry
	// startWall is the wall clock the segment's first sample is dated at
	// (before the index's truncation to the millisecond): its arrival, or
	// for a segment that continues the last one, that one's end (see
	// continueAt). Later samples are dated by media time from it, and
	// their arrival checked against it for clock jumps.
	startWall time.Time
	size      int64 // bytes durably handed to the kernel
	mvhdOff   int64
	seq       uint32
	partDrive int64 // driving-track ticks buffered in the current part
}

// Writer appends the samples of one Stream to segment files. It is not safe
// for concurrent use: the recorder calls it from one goroutine per camera.
type Writer struct {
	st     *Store
	stream Stream
	codec  string
	init   []*fmp4.InitTrack
	tracks []trackState
	drive  int // index of the track that drives segmentation

	partTicks int64 // Part in driving-track ticks
	segTicks  int64 // Segment in driving-track ticks

	seg    *openSegment
	failed bool   // the last write failed; the next success raises "recovered"
	cutGen uint64 // Store.cutGen when the segment began
	closed bool

	buf   []byte      // fragment header bytes, reused
	iov   net.Buffers // header + payloads of the fragment being written, reused
	parts []partTrack // reused
}

// Begin starts writing a Stream. Samples before the first keyframe of the
// driving track (the first video track, else the first track) are dropped.
func (s *Store) Begin(stream Stream) (*Writer, error) {
	if _, err := cameraid.Parse(stream.Camera); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if len(stream.Tracks) == 0 {
		return nil, fmt.Errorf("begin %s: stream has no tracks", stream.Camera)
	}
	w := &Writer{st: s, stream: stream, drive: -1}
	names := make([]string, len(stream.Tracks))
	for i, t := range stream.Tracks {
		if t.Codec == nil || t.TimeScale == 0 {
			return nil, fmt.Errorf("begin %s: track %d has no codec or time scale", stream.Camera, i)
		}
		w.init = append(w.init, &fmp4.InitTrack{ID: i + 1, TimeScale: t.TimeScale, Codec: t.Codec})
		w.tracks = append(w.tracks, trackState{ts: int64(t.TimeScale), video: t.Codec.IsVideo()})
		if w.drive < 0 && t.Codec.IsVideo() {
			w.drive = i
		}
		names[i] = codecName(t.Codec)
	}
	if w.drive < 0 {
		w.drive = 0
	}
	w.codec = strings.Join(names, "+")
	dts := w.tracks[w.drive].ts
	w.partTicks = max(1, durationToTicks(s.opts.Part, dts))
	w.segTicks = max(1, durationToTicks(s.opts.Segment, dts))
	return w, nil
}

// Write appends one sample. Errors are returned (and raised as alarms) but
// never make the Writer unusable: after a failed write the segment is
// closed and the next keyframe starts a new one.
func (w *Writer) Write(smp Sample) error {
	if w.closed {
		return fmt.Errorf("write %s: writer closed", w.stream.Camera)
	}
	if smp.Track < 0 || smp.Track >= len(w.tracks) {
		return fmt.Errorf("write %s: sample for unknown track %d", w.stream.Camera, smp.Track)
	}
	if smp.Arrival.IsZero() {
		smp.Arrival = time.Now()
	}
	t := &w.tracks[smp.Track]
	isDrive := smp.Track == w.drive
	canStart := isDrive && (smp.Sync || !t.video)

	if w.seg == nil {
		if !canStart {
			return nil
		}
		return w.startSegment(smp)
	}

	if t.hasPend {
		d := smp.DTS - t.pend.dts
		if d < 0 && !isDrive && d > -durationToTicks(maxAudioJitter, t.ts) {
			return nil // a slightly early sample of a secondary track: drop it, keep recording
		}
		if d < 0 || d > durationToTicks(maxDTSForward, t.ts) {
			w.st.log.Warn("rtp discontinuity, closing segment", "camera", w.stream.Camera,
				"track", smp.Track, "step", ticksToDuration(d, t.ts))
			err := w.closeSegment()
			if canStart {
				err = errors.Join(err, w.startSegment(smp))
			}
			return err
		}
		w.finishPending(t, uint32(d))
	} else if smp.DTS < t.segStart {
		return nil // late sample from before the segment start
	}

	if isDrive {
		seg := w.seg
		rtpElapsed := ticksToDuration(smp.DTS-t.segStart, t.ts)
		wallElapsed := smp.Arrival.Sub(seg.startWall)
		if diff := wallElapsed - rtpElapsed; diff > maxClockJump || diff < -maxClockJump {
			w.st.log.Warn("clock jump, closing segment", "camera", w.stream.Camera,
				"wall_elapsed", wallElapsed, "rtp_elapsed", rtpElapsed)
			err := w.closeSegment()
			if canStart {
				err = errors.Join(err, w.startSegment(smp))
			}
			return err
		}
		if canStart && smp.DTS > t.segStart && (smp.DTS-t.segStart >= w.segTicks || w.st.cutGen.Load() != w.cutGen) {
			at := continueAt(seg.startWall.Add(rtpElapsed), smp.Arrival, ticksToDuration(int64(t.lastDur), t.ts))
			err := w.closeSegmentAt(smp.DTS)
			return errors.Join(err, w.startSegmentAt(smp, at))
		}
		if seg.partDrive >= w.partTicks {
			if err := w.flushPart(); err != nil {
				if w.seg != nil {
					t.setPending(smp)
				}
				return w.fail(err)
			}
		}
	}
	t.setPending(smp)
	return nil
}

func (t *trackState) setPending(s Sample) {
	t.pend = pending{dts: s.DTS, ptsOff: s.PTSOffset, sync: s.Sync || !t.video, data: Sample{Payload: s.Payload, Pieces: s.Pieces}, arrival: s.Arrival}
	t.hasPend = true
}

// finishPending moves the pending sample of t into the current part with
// duration d.
func (w *Writer) finishPending(t *trackState, d uint32) {
	p := t.pend
	t.hasPend = false
	t.pend.data = Sample{}
	if p.dts < t.segStart {
		return
	}
	if !t.started {
		t.started = true
		t.written = p.dts - t.segStart
	}
	if len(t.samples) == 0 {
		t.partBase = uint64(t.written)
	}
	t.samples = append(t.samples, newPartSample(fmp4.Sample{
		Duration:        d,
		PTSOffset:       p.ptsOff,
		IsNonSyncSample: !p.sync,
	}, p.data))
	t.written += int64(d)
	t.lastDur = d
	if t == &w.tracks[w.drive] {
		w.seg.partDrive += int64(d)
	}
}

// continueAt is the wall clock a segment starts at when it continues the
// previous one of the same stream at a keyframe (a cut by duration or by
// CutSegments): the previous one's end, moved towards the keyframe's
// arrival by at most one frame interval later or half a one earlier.
//
// Dating each segment by its first keyframe's arrival alone would leave a
// hole (or an overlap) between two segments of one unbroken stream as
// wide as the difference in that keyframe's delay: the recorder reads at
// a 40 ms tick (recorder/batchread.go) and a loaded server adds
// scheduling delay, so holes of 80–300 ms were seen on a busy CI machine,
// and the export reported them as lost footage (its tolerance is two
// frame intervals, export/plan.go). Starting exactly at the end instead
// would let the camera's clock drift (tens of ppm, up to a few hundred on
// cheap ones) from the server's without bound. The steps follow a drift
// of up to 667 ppm (a camera clock slower than the server's) or 333 ppm
// (faster) at the default 60 s segments and 25 fps; a larger one still
// ends in the clock-jump check's fresh start. An earlier start is held to
// half a frame because the export stops a piece where the next one
// starts: an overlap of a whole frame would drop the previous segment's
// last frame, while a hole of a frame drops nothing. So one stream's
// segments meet within a frame, and their dates stay within a few frames
// of the arrivals.
func continueAt(end, arrival time.Time, frame time.Duration) time.Time {
	return end.Add(max(-frame/2, min(frame, arrival.Sub(end))))
}

// startSegment creates a new segment file beginning with smp, a keyframe
// of the driving track, dated by its arrival.
func (w *Writer) startSegment(smp Sample) error { return w.startSegmentAt(smp, smp.Arrival) }

// startSegmentAt creates a new segment file beginning with smp, a keyframe
// of the driving track, dated at (see continueAt).
func (w *Writer) startSegmentAt(smp Sample, at time.Time) error {
	st := w.st
	start := at.UTC().Truncate(time.Millisecond)
	initBytes, mvhdOff, err := marshalInit(&fmp4.Init{Tracks: w.init})
	if err != nil {
		return w.fail(fmt.Errorf("marshal init for %s: %w", w.stream.Camera, err))
	}

	var f File
	var dirs []string
	var rel string
	for range 1000 { // two segments may start in the same millisecond
		rel, err = segmentRelPath(w.stream.Camera, st.opts.Server, start)
		if err != nil {
			return fmt.Errorf("start segment: %w", err)
		}
		f, dirs, err = createIn(st.fsys, st.opts.Dir, rel)
		if !errors.Is(err, os.ErrExist) {
			break
		}
		start = start.Add(time.Millisecond)
	}
	if err != nil {
		return w.fail(fmt.Errorf("create segment %s: %w", rel, err))
	}
	k, err := f.Write(initBytes)
	if err != nil && isDiskFull(err) && !w.failed && st.makeRoom(w.stream.Camera) {
		_, err = f.Write(initBytes[k:]) // after what made it in, as a part
	}
	if err != nil {
		f.Close()
		os.Remove(filepath.Join(st.opts.Dir, rel))
		return w.fail(fmt.Errorf("write init %s: %w", rel, err))
	}
	seg := &openSegment{
		sf:        &syncedFile{f: f, camera: w.stream.Camera, dirs: dirs},
		f:         f,
		startWall: at,
		size:      int64(len(initBytes)),
		mvhdOff:   mvhdOff,
		e: entry{
			File:       rel,
			Start:      start.UnixNano(),
			End:        start.UnixNano(),
			Bytes:      int64(len(initBytes)),
			Codec:      w.codec,
			Home:       w.stream.Home,
			RecordedBy: st.opts.Server,
			Open:       true,
		},
	}
	st.sync.note(seg.sf, seg.e)
	w.seg = seg
	w.cutGen = st.cutGen.Load()

	driveNs := ticksToDuration(smp.DTS, w.tracks[w.drive].ts)
	for i := range w.tracks {
		t := &w.tracks[i]
		t.segStart = durationToTicks(driveNs, t.ts)
		t.written = 0
		t.started = false
		t.samples = t.samples[:0]
		if i == w.drive {
			t.segStart = smp.DTS
		}
	}
	w.tracks[w.drive].setPending(smp)
	w.st.log.Debug("segment started", "camera", w.stream.Camera, "file", rel)
	return nil
}

// closeSegmentAt closes the segment at a keyframe cut with DTS cut (driving
// track ticks): pending samples of other tracks that start before the cut
// are written with their previous duration; later ones stay pending for
// the next segment.
func (w *Writer) closeSegmentAt(cut int64) error {
	cutNs := ticksToDuration(cut, w.tracks[w.drive].ts)
	for i := range w.tracks {
		t := &w.tracks[i]
		if i == w.drive || !t.hasPend {
			continue
		}
		if ticksToDuration(t.pend.dts, t.ts) < cutNs {
			w.finishPending(t, t.guessDuration())
		}
	}
	return w.finalize()
}

// closeSegment closes the segment, writing every pending sample with its
// previous duration. Until the next keyframe of the driving track starts a
// new segment, Write drops samples.
func (w *Writer) closeSegment() error {
	if w.seg == nil {
		return nil
	}
	for i := range w.tracks {
		t := &w.tracks[i]
		if t.hasPend {
			w.finishPending(t, t.guessDuration())
		}
	}
	return w.finalize()
}

// guessDuration is the duration of a final sample: the previous one's.
func (t *trackState) guessDuration() uint32 {
	if t.lastDur > 0 {
		return t.lastDur
	}
	if t.video {
		return uint32(t.ts / 25)
	}
	return 1024
}

// finalize flushes the last part, patches the duration, closes the file
// and marks the index entry closed.
func (w *Writer) finalize() error {
	seg := w.seg
	if seg == nil {
		return nil
	}
	var errs []error
	if err := w.flushPart(); err != nil {
		errs = append(errs, err)
	}
	w.seg = nil
	for i := range w.tracks {
		w.tracks[i].samples = w.tracks[i].samples[:0]
	}
	dur := time.Duration(seg.e.End - seg.e.Start)
	if err := patchMvhdDuration(seg.f, seg.mvhdOff, dur); err != nil {
		errs = append(errs, fmt.Errorf("patch duration of %s: %w", seg.e.File, err))
	}
	seg.e.Open = false
	// The syncer syncs, closes and indexes it closed; nothing but the
	// init segment means no footage to keep.
	w.st.sync.finish(seg.sf, seg.e, seg.e.End == seg.e.Start)
	if len(errs) > 0 {
		return w.fail(errors.Join(errs...))
	}
	w.st.log.Debug("segment closed", "camera", w.stream.Camera, "file", seg.e.File, "duration", dur)
	return nil
}

// flushPart writes the buffered samples as one moof+mdat fragment, then
// updates the index entry to claim them.
func (w *Writer) flushPart() error {
	seg := w.seg
	if seg == nil {
		return nil
	}
	if seg.sf.failed.Load() {
		return w.abortSegment(fmt.Errorf("sync segment %s failed: its footage since the last sync may be lost", seg.e.File))
	}
	w.parts = w.parts[:0]
	for i := range w.tracks {
		t := &w.tracks[i]
		if len(t.samples) > 0 {
			w.parts = append(w.parts, partTrack{ID: uint32(i + 1), BaseTime: t.partBase, Samples: t.samples})
		}
	}
	if len(w.parts) == 0 {
		return nil
	}
	seg.seq++
	w.buf = appendPartHeader(w.buf[:0], seg.seq, w.parts)
	w.iov = partBuffers(w.iov[:0], w.buf, w.parts)
	writeStart := time.Now()
	n, err := writeFragment(seg.f, w.iov)
	// Room is made once per failure streak: when nothing could be freed,
	// the next parts do not wait again (fail asks for space anyway).
	if err != nil && isDiskFull(err) && !w.failed && w.st.makeRoom(w.stream.Camera) {
		// The first n bytes are in the file and the offset is past
		// them: the rest follows them, and the part is whole.
		var m int64
		m, err = writeFragment(seg.f, unwritten(w.iov, n))
		n += m
	}
	clear(w.iov) // drop payload references
	for i := range w.tracks {
		t := &w.tracks[i]
		clear(t.samples) // drop payload references
		t.samples = t.samples[:0]
	}
	clear(w.parts)
	seg.partDrive = 0
	if err != nil {
		return w.abortSegment(fmt.Errorf("write segment %s: %w", seg.e.File, err))
	}
	if w.st.opts.ObservePartWrite != nil {
		w.st.opts.ObservePartWrite(time.Since(writeStart))
	}
	seg.size += n
	d := &w.tracks[w.drive]
	seg.e.End = seg.e.Start + int64(ticksToDuration(d.written, d.ts))
	seg.e.Bytes = seg.size
	w.st.sync.note(seg.sf, seg.e)
	if w.failed {
		w.failed = false
		w.st.alarm(Alarm{Kind: AlarmRecovered, Camera: w.stream.Camera})
	}
	return nil
}

// abortSegment handles a failed segment write: the file is cut back to its
// last complete fragment and closed with the footage it holds, and the
// Writer waits for the next keyframe to start a new file.
func (w *Writer) abortSegment(cause error) error {
	seg := w.seg
	w.seg = nil
	for i := range w.tracks {
		t := &w.tracks[i]
		t.hasPend = false
		t.pend.data = Sample{}
		clear(t.samples)
		t.samples = t.samples[:0]
	}
	errs := []error{cause}
	if err := seg.f.Truncate(seg.size); err != nil {
		errs = append(errs, fmt.Errorf("truncate %s: %w", seg.e.File, err))
	}
	patchMvhdDuration(seg.f, seg.mvhdOff, time.Duration(seg.e.End-seg.e.Start)) //nolint:errcheck // best effort; recovery rescans
	seg.e.Open = false
	w.st.sync.finish(seg.sf, seg.e, seg.e.End == seg.e.Start)
	return errors.Join(errs...)
}

// fail raises an alarm for err and returns it.
func (w *Writer) fail(err error) error {
	if err == nil {
		return nil
	}
	kind := AlarmWriteError
	if isDiskFull(err) {
		kind = AlarmDiskFull
		w.st.requestSpace() // free space now, not at the next retention pass
	}
	if !w.failed { // one alarm per failure streak, not one per sample
		w.st.alarm(Alarm{Kind: kind, Camera: w.stream.Camera, Err: err.Error()})
	}
	w.failed = true
	w.st.log.Debug("segment write failed", "camera", w.stream.Camera, "err", err)
	return err
}

// Close finishes the current segment: pending samples are written with
// their previous duration and the index entry is closed.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.closeSegment()
}
