package view

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/buddyrec/buddyrec/internal/fragment"
	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// muxer turns a camera's frames into the fMP4 a browser's Media Source
// Extensions play: an init segment per stream, then one fragment per video
// frame (with the audio that arrived before it), for the lowest latency a
// fragment can give.
//
// The timeline is the server's clock: the first sample of each stream is
// placed at its arrival time since the muxer began, and later samples by
// their DTS from there, so a reconnect or a move to another recorder
// continues the timeline instead of restarting it at zero, and a gap in
// the camera is a gap in the timeline.
type muxer struct {
	epoch time.Time

	cur    *storage.Stream
	tracks []*muxTrack // by stream track index; nil for tracks a browser cannot play
	out    []uint32    // fMP4 track ID per stream track index (0 = left out)
	video  int         // stream track index of the video track, -1 if none
	seq    uint32

	// origin maps the current stream's DTS to the timeline: a sample's
	// timeline position is base + (DTS/timescale − firstDTS).
	base     time.Duration
	firstDTS time.Duration
}

type muxTrack struct {
	id        uint32
	timeScale uint32
	pending   *storage.Sample // held until the next sample gives its duration
	pendingT  uint64          // its timeline position, in timeScale units
	done      []doneSample    // completed, waiting for the next fragment
}

type doneSample struct {
	s        storage.Sample
	t        uint64
	duration uint32
}

// Init is what a new stream needs before its fragments.
type Init struct {
	// Bytes is the init segment (ftyp+moov).
	Bytes []byte
	// MIME is the Media Source type, e.g. `video/mp4; codecs="avc1.64001f,mp4a.40.2"`.
	MIME string
	// Codec is the short name ("h264", "h265").
	Codec string
}

func newMuxer(epoch time.Time) *muxer { return &muxer{epoch: epoch, video: -1} }

// start begins a new stream at frame fr (a keyframe); it returns the init.
func (m *muxer) start(fr recorder.Frame) (Init, error) {
	st := fr.Stream
	m.cur = st
	m.tracks = make([]*muxTrack, len(st.Tracks))
	m.out = make([]uint32, len(st.Tracks))
	m.video = -1
	init := &fmp4.Init{}
	var codecs []string
	var short string
	for i, t := range st.Tracks {
		c, name, ok := codecString(t.Codec)
		if !ok {
			continue
		}
		if t.Codec.IsVideo() {
			if m.video >= 0 {
				continue // one video track is what a <video> shows
			}
			m.video = i
			short = name
		}
		id := uint32(len(init.Tracks) + 1)
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: int(id), TimeScale: t.TimeScale, Codec: t.Codec})
		m.tracks[i] = &muxTrack{id: id, timeScale: t.TimeScale}
		m.out[i] = id
		codecs = append(codecs, c)
	}
	if len(init.Tracks) == 0 {
		return Init{}, fmt.Errorf("camera %s: no track a browser can play", st.Camera)
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return Init{}, fmt.Errorf("camera %s: init segment: %w", st.Camera, err)
	}
	arrival := fr.Sample.Arrival
	if arrival.IsZero() {
		arrival = time.Now()
	}
	m.base = arrival.Sub(m.epoch)
	if m.base < 0 {
		m.base = 0
	}
	m.firstDTS = ticks(fr.Sample.DTS, st.Tracks[fr.Sample.Track].TimeScale)
	kind := "video"
	if m.video < 0 {
		kind = "audio"
	}
	return Init{Bytes: buf.Bytes(), MIME: kind + `/mp4; codecs="` + strings.Join(codecs, ",") + `"`, Codec: short}, nil
}

func ticks(v int64, ts uint32) time.Duration {
	return time.Duration(v) * time.Second / time.Duration(ts)
}

// position is a sample's place on the timeline in its track's time scale.
func (m *muxer) position(s storage.Sample, ts uint32) uint64 {
	d := m.base + ticks(s.DTS, ts) - m.firstDTS
	if d < 0 {
		d = 0
	}
	return uint64(d * time.Duration(ts) / time.Second)
}

// add takes the next frame of the current stream and returns a fragment
// when one is complete (nil otherwise), and whether it begins at a video
// keyframe: where a new viewer can start.
func (m *muxer) add(s storage.Sample) ([]byte, bool) {
	if s.Track < 0 || s.Track >= len(m.tracks) || m.tracks[s.Track] == nil {
		return nil, false
	}
	t := m.tracks[s.Track]
	pos := m.position(s, t.timeScale)
	if t.pending != nil {
		if pos <= t.pendingT { // a step back: restart the track's run here
			pos = t.pendingT + 1
		}
		t.done = append(t.done, doneSample{s: *t.pending, t: t.pendingT, duration: uint32(pos - t.pendingT)})
	}
	cp := s
	t.pending, t.pendingT = &cp, pos
	if m.video >= 0 && s.Track != m.video {
		return nil, false // audio rides with the next video fragment
	}
	sync := m.video < 0
	if m.video >= 0 {
		if v := m.tracks[m.video]; len(v.done) > 0 {
			sync = v.done[0].s.Sync
		}
	}
	return m.fragment(), sync
}

// fragment emits every completed sample as one fragment.
func (m *muxer) fragment() []byte {
	var tracks []fragment.Track[doneSample]
	for _, t := range m.tracks {
		if t == nil || len(t.done) == 0 {
			continue
		}
		tracks = append(tracks, fragment.Track[doneSample]{ID: t.id, BaseTime: t.done[0].t, Samples: t.done})
	}
	if len(tracks) == 0 {
		return nil
	}
	m.seq++
	size := 0
	for _, tr := range tracks {
		for _, s := range tr.Samples {
			size += s.s.Size()
		}
	}
	b := make([]byte, 0, 256+size)
	b = fragment.AppendHeader(b, m.seq, tracks, func(s *doneSample) fragment.Fields {
		return fragment.Fields{Duration: s.duration, Size: uint32(s.s.Size()), PTSOffset: s.s.PTSOffset, NonSync: !s.s.Sync}
	})
	for _, tr := range tracks {
		for _, s := range tr.Samples {
			b = s.s.AppendPayload(b)
		}
	}
	for _, t := range m.tracks {
		if t != nil {
			t.done = t.done[:0]
		}
	}
	return b
}

// codecString is the RFC 6381 codec of a track for MediaSource, its short
// name, and whether a browser may play it at all.
func codecString(c mp4.Codec) (string, string, bool) {
	switch c := c.(type) {
	case *mp4.CodecH264:
		if len(c.SPS) < 4 {
			return "", "", false
		}
		return fmt.Sprintf("avc1.%02x%02x%02x", c.SPS[1], c.SPS[2], c.SPS[3]), "h264", true
	case *mp4.CodecH265:
		return hevcCodec(c.SPS), "h265", true
	case *mp4.CodecMPEG4Audio:
		return fmt.Sprintf("mp4a.40.%d", c.Config.Type), "aac", true
	default:
		return "", "", false
	}
}

// hevcCodec builds "hvc1.P.C.TL.B" (ISO/IEC 14496-15 annex E) from the
// profile_tier_level at the start of an H.265 SPS.
func hevcCodec(sps []byte) string {
	rbsp := unescape(sps)
	// NAL header (2), then vps id/max sub layers/nesting (1 byte), then
	// profile_tier_level: space(2) tier(1) profile(5), 32 compat flags,
	// 48 constraint bits, level.
	if len(rbsp) < 2+1+1+4+6+1 {
		return "hvc1.1.6.L93.B0"
	}
	p := rbsp[3:]
	space := p[0] >> 6
	tier := (p[0] >> 5) & 1
	profile := p[0] & 0x1f
	compat := binary.BigEndian.Uint32(p[1:])
	var rev uint32
	for i := 0; i < 32; i++ {
		if compat&(1<<i) != 0 {
			rev |= 1 << (31 - i)
		}
	}
	level := p[11]
	var b strings.Builder
	b.WriteString("hvc1.")
	if space > 0 {
		b.WriteByte("ABC"[space-1])
	}
	fmt.Fprintf(&b, "%d.%x.", profile, rev)
	if tier == 1 {
		b.WriteString("H")
	} else {
		b.WriteString("L")
	}
	fmt.Fprintf(&b, "%d", level)
	cons := p[5:11]
	last := -1
	for i, c := range cons {
		if c != 0 {
			last = i
		}
	}
	if last < 0 {
		b.WriteString(".B0")
	}
	for i := 0; i <= last; i++ {
		fmt.Fprintf(&b, ".%X", cons[i])
	}
	return b.String()
}

// unescape removes emulation-prevention bytes (00 00 03).
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}
