package live

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/pion/rtp"

	"github.com/buddyrec/buddyrec/recorder"
	"github.com/buddyrec/buddyrec/storage"
)

// idleTimeout closes a feed that was described but never set up.
const idleTimeout = 10 * time.Second

// feed turns one camera's frames into RTP on one ServerStream shared by all
// of its viewers. It lives from the first DESCRIBE until the last viewer
// leaves (or the codec parameters change, which needs a new SDP).
type feed struct {
	s      *Server
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed once stream or err is set
	done   chan struct{}
	stream *gortsplib.ServerStream
	err    error

	viewers int // guarded by s.mu
}

// track is one track of the recorded stream as it goes out over RTP.
type track struct {
	media  *description.Media
	encode func(s storage.Sample) ([]*rtp.Packet, error)
}

func newFeed(s *Server, id string) *feed {
	f := &feed{s: s, id: id, ready: make(chan struct{}), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(s.ctx)
	return f
}

func (f *feed) start() {
	f.s.wg.Add(1)
	go func() {
		defer f.s.wg.Done()
		defer close(f.done)
		f.run()
	}()
}

func (f *feed) stop() { f.cancel() }

func (f *feed) wait() { <-f.done }

func (f *feed) isDone() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (f *feed) fail(err error) {
	f.err = err
	close(f.ready)
}

func (f *feed) run() {
	frames, unsubscribe := f.s.o.Source.Subscribe(f.id, f.s.o.QueueSize)
	defer unsubscribe()

	// wait for a keyframe: it carries the stream's parameters and is where
	// a viewer can start decoding
	timeout := time.NewTimer(f.s.o.StartTimeout)
	defer timeout.Stop()
	var first recorder.Frame
	for first.Stream == nil {
		select {
		case fr, ok := <-frames:
			if !ok {
				f.fail(errors.New("camera stopped"))
				return
			}
			if fr.Startable() {
				first = fr
			}
		case <-timeout.C:
			f.fail(fmt.Errorf("no keyframe within %v", f.s.o.StartTimeout))
			return
		case <-f.ctx.Done():
			f.fail(f.ctx.Err())
			return
		}
	}
	tracks, desc, err := describe(first.Stream)
	if err != nil {
		f.fail(err)
		return
	}
	st := &gortsplib.ServerStream{Server: f.s.rtsp, Desc: desc}
	if err := st.Initialize(); err != nil {
		f.fail(fmt.Errorf("create stream: %w", err))
		return
	}
	defer st.Close()
	f.stream = st
	close(f.ready)
	f.s.log.Debug("live feed started", "camera", f.id)

	cur := first.Stream
	f.write(st, tracks, first.Sample)
	idle := time.NewTicker(idleTimeout)
	defer idle.Stop()
	for {
		select {
		case fr, ok := <-frames:
			if !ok {
				return
			}
			if fr.Stream != cur {
				if !sameTracks(cur, fr.Stream) {
					// viewers must DESCRIBE again to learn the new SDP
					f.s.log.Info("live feed restarts: stream parameters changed", "camera", f.id)
					f.s.dropFeed(f)
					return
				}
				cur = fr.Stream
			}
			f.write(st, tracks, fr.Sample)
		case <-idle.C:
			f.s.mu.Lock()
			n := f.viewers
			f.s.mu.Unlock()
			if n == 0 {
				f.s.dropFeed(f)
				return
			}
		case <-f.ctx.Done():
			return
		}
	}
}

// dropFeed forgets f so the next DESCRIBE starts a new one.
func (s *Server) dropFeed(f *feed) {
	s.mu.Lock()
	if s.feeds[f.id] == f {
		delete(s.feeds, f.id)
	}
	s.mu.Unlock()
}

func (f *feed) write(st *gortsplib.ServerStream, tracks []*track, smp storage.Sample) {
	if smp.Track < 0 || smp.Track >= len(tracks) || tracks[smp.Track] == nil {
		return
	}
	t := tracks[smp.Track]
	pkts, err := t.encode(smp)
	if err != nil {
		f.s.log.Debug("live packetize", "camera", f.id, "err", err)
		return
	}
	for _, p := range pkts {
		// per-viewer queue full is handled in OnStreamWriteError; other
		// errors mean the stream is closing
		st.WritePacketRTP(t.media, p) //nolint:errcheck
	}
}

func sameTracks(a, b *storage.Stream) bool {
	if a == nil || b == nil || len(a.Tracks) != len(b.Tracks) {
		return false
	}
	for i := range a.Tracks {
		if a.Tracks[i].TimeScale != b.Tracks[i].TimeScale || !reflect.DeepEqual(a.Tracks[i].Codec, b.Tracks[i].Codec) {
			return false
		}
	}
	return true
}

// describe builds the SDP and the packetizers of a stream. Tracks with a
// codec we cannot re-stream are left out (nil in the returned slice).
func describe(st *storage.Stream) ([]*track, *description.Session, error) {
	desc := &description.Session{}
	tracks := make([]*track, len(st.Tracks))
	pt := uint8(96)
	for i, tr := range st.Tracks {
		var t *track
		var err error
		switch c := tr.Codec.(type) {
		case *mp4.CodecH264:
			t, err = h264Track(c, pt)
		case *mp4.CodecH265:
			t, err = h265Track(c, pt)
		case *mp4.CodecMPEG4Audio:
			t, err = aacTrack(c, pt)
		default:
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("track %d: %w", i, err)
		}
		tracks[i] = t
		desc.Medias = append(desc.Medias, t.media)
		pt++
	}
	if len(desc.Medias) == 0 {
		return nil, nil, errors.New("no track can be re-streamed")
	}
	return tracks, desc, nil
}

func h264Track(c *mp4.CodecH264, pt uint8) (*track, error) {
	forma := &format.H264{PayloadTyp: pt, PacketizationMode: 1, SPS: c.SPS, PPS: c.PPS}
	enc, err := forma.CreateEncoder()
	if err != nil {
		return nil, err
	}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	return &track{media: medi, encode: func(s storage.Sample) ([]*rtp.Packet, error) {
		au, err := avccNALUs(s, [][]byte{c.SPS, c.PPS})
		if err != nil {
			return nil, err
		}
		return stamp(enc.Encode(au))(uint32(s.DTS + int64(s.PTSOffset)))
	}}, nil
}

func h265Track(c *mp4.CodecH265, pt uint8) (*track, error) {
	forma := &format.H265{PayloadTyp: pt, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}
	enc, err := forma.CreateEncoder()
	if err != nil {
		return nil, err
	}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	return &track{media: medi, encode: func(s storage.Sample) ([]*rtp.Packet, error) {
		au, err := avccNALUs(s, [][]byte{c.VPS, c.SPS, c.PPS})
		if err != nil {
			return nil, err
		}
		return stamp(enc.Encode(au))(uint32(s.DTS + int64(s.PTSOffset)))
	}}, nil
}

func aacTrack(c *mp4.CodecMPEG4Audio, pt uint8) (*track, error) {
	cfg := c.Config
	forma := &format.MPEG4Audio{PayloadTyp: pt, Config: &cfg, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
	enc, err := forma.CreateEncoder()
	if err != nil {
		return nil, err
	}
	medi := &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{forma}}
	return &track{media: medi, encode: func(s storage.Sample) ([]*rtp.Packet, error) {
		if n := s.Size(); n == 0 || n > mpeg4audio.MaxAccessUnitSize {
			return nil, fmt.Errorf("bad AAC access unit of %d bytes", n)
		}
		return stamp(enc.Encode([][]byte{s.Bytes()}))(uint32(s.DTS))
	}}, nil
}

// avccNALUs splits an AVCC sample into NAL units; a keyframe gets the
// parameter sets in front, so a viewer joining there can decode it even if
// it ignores the SDP.
func avccNALUs(s storage.Sample, params [][]byte) ([][]byte, error) {
	var au h264.AVCC
	if err := au.Unmarshal(s.Bytes()); err != nil {
		return nil, fmt.Errorf("split AVCC sample: %w", err)
	}
	if !s.Sync {
		return au, nil
	}
	out := make([][]byte, 0, len(params)+len(au))
	for _, p := range params {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return append(out, au...), nil
}

// stamp sets the RTP timestamp of packets from one access unit.
func stamp(pkts []*rtp.Packet, err error) func(ts uint32) ([]*rtp.Packet, error) {
	return func(ts uint32) ([]*rtp.Packet, error) {
		if err != nil {
			return nil, err
		}
		for _, p := range pkts {
			p.Timestamp = ts
		}
		return pkts, nil
	}
}
