package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/pion/rtp"

	"github.com/buddyrec/buddyrec/internal/wallgrid"
	"github.com/buddyrec/buddyrec/storage"
)

// Pipeline records one camera: connect, depacketize, queue, write; on any
// failure it waits a backoff and starts over with a new RTSP client.
type Pipeline struct {
	cam  Camera
	opts ManagerOptions
	log  *slog.Logger
	hub  *hub

	cancel context.CancelFunc
	done   chan struct{}

	framesReceived atomic.Uint64
	framesDropped  atomic.Uint64
	bytesReceived  atomic.Uint64
	reconnects     atomic.Uint64
	lastKeyframe   atomic.Int64 // unix nanoseconds

	mu          sync.Mutex
	nextAttempt time.Time // when the next connection attempt is due; zero while connected
	state       State
	reason      Reason
	since       time.Time
	lastErr     string
	codec       string
	bitrate     float64
	recording   time.Time // when the current session began recording
	standby     Standby
	heldBytes   int64
	heldSpan    time.Duration
	heldNeed    time.Duration
	heldPages   int64
	started     time.Time // when Manager.Set started the pipeline
	// standbyChanged wakes the session's writer when the standby mode
	// changes, so that a hot standby taken over writes its ring at once
	// rather than at the camera's next sample.
	standbyChanged chan struct{}
}

func newPipeline(cam Camera, opts ManagerOptions, h *hub) *Pipeline {
	p := &Pipeline{
		cam:     cam,
		opts:    opts,
		log:     opts.Logger.With("camera", cam.ID),
		hub:     h,
		done:    make(chan struct{}),
		state:   StateConnecting,
		since:   time.Now(),
		standby: cam.Standby,

		standbyChanged: make(chan struct{}, 1),
	}
	p.started = p.since
	return p
}

func (p *Pipeline) standbyMode() Standby {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.standby
}

func (p *Pipeline) setStandby(m Standby) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.standby != m {
		p.log.Info("standby mode changes in place", "from", string(p.standby), "to", string(m))
		// the order's arrival; a hot standby's writer, woken below,
		// moves it on once it has written its ring (tookOver)
		p.since = time.Now()
		p.standby = m
		select {
		case p.standbyChanged <- struct{}{}:
		default:
		}
		if m != StandbyHot {
			p.heldBytes, p.heldSpan, p.heldNeed, p.heldPages = 0, 0, 0, 0
		}
	}
}

// tookOver marks the moment a hot standby's writer has taken over: woken
// by setStandby, it has written its ring and goes on with the live
// samples. That, not the order's arrival in setStandby nor the moment the
// writer woke, is when the camera records here. The writers of a takeover
// are woken together and their rings are written one after another
// (about 3 ms each at 2 Mbit/s, the kernel's copy into the page cache);
// stamped when it woke, a writer whose turn came 80 ms later would claim
// those 80 ms.
func (p *Pipeline) tookOver() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.since = time.Now()
}

func (p *Pipeline) start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	go p.run(ctx)
}

// stop asks the pipeline to end; wait blocks until it has.
func (p *Pipeline) stop() { p.cancel() }
func (p *Pipeline) wait() { <-p.done }

// Status returns a snapshot of the pipeline.
func (p *Pipeline) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{
		ID:             p.cam.ID,
		Home:           p.cam.Home,
		State:          p.state,
		Since:          p.since,
		Started:        p.started,
		Reason:         p.reason,
		Error:          p.lastErr,
		FramesReceived: p.framesReceived.Load(),
		FramesDropped:  p.framesDropped.Load(),
		BytesReceived:  p.bytesReceived.Load(),
		Reconnects:     p.reconnects.Load(),
		Bitrate:        p.bitrate,
		Codec:          p.codec,
		NextAttempt:    p.nextAttempt,
		Standby:        p.standby,
		HeldBytes:      p.heldBytes,
		HeldSpan:       p.heldSpan,
		HeldNeed:       p.heldNeed,
		HeldResident:   p.heldPages,
	}
	if ns := p.lastKeyframe.Load(); ns != 0 {
		st.LastKeyframe = time.Unix(0, ns)
	}
	return st
}

func (p *Pipeline) setState(state State, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if state != p.state {
		p.state, p.since = state, time.Now()
	}
	switch {
	case err != nil:
		p.lastErr = redactString(err.Error(), p.cam.URL)
		p.reason = reasonOf(err)
	case state == StateRecording:
		p.lastErr, p.reason = "", ""
	}
	if state == StateRecording {
		p.recording = p.since
	}
	if state != StateRecording {
		p.bitrate = 0
	}
}

func (p *Pipeline) run(ctx context.Context) {
	defer close(p.done)
	backoff := p.opts.MinBackoff
	for {
		healthy, err := p.attempt(ctx)
		if ctx.Err() != nil {
			p.setState(StateOffline, fail(ReasonStopped, errors.New("stopped")))
			return
		}
		if err == nil {
			err = fail(ReasonClosed, errors.New("session ended"))
		}
		p.setState(StateOffline, err)
		p.log.Warn("camera offline", "err", redactString(err.Error(), p.cam.URL))
		if healthy >= p.opts.HealthyAfter {
			backoff = p.opts.MinBackoff
		}
		// Full jitter over the upper half keeps cameras of a failed switch
		// from reconnecting in lockstep.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, p.opts.MaxBackoff)
		cameBack := p.waitRetry(ctx, time.Now().Add(d))
		if ctx.Err() != nil {
			p.setState(StateOffline, fail(ReasonStopped, errors.New("stopped")))
			return
		}
		if cameBack {
			// A camera that returns is a new situation, not the same
			// failure again: if it needs a moment more, retry soon.
			backoff = p.opts.MinBackoff
			p.log.Info("camera reachable again; reconnecting now")
		}
		p.reconnects.Add(1)
	}
}

// waitRetry waits until the next attempt is due at `due`, probing the
// camera's RTSP port every ProbeInterval meanwhile. It returns true early
// when the port, unreachable since the failure, accepts a connection
// again: the camera came back, and recording it should not wait out a
// backoff grown during a long outage.
//
// Only that transition ends the wait. A camera whose port stays open while
// its sessions fail (wrong password, no video, garbage) keeps its backoff,
// so a broken camera is not hammered once a second.
func (p *Pipeline) waitRetry(ctx context.Context, due time.Time) bool {
	p.mu.Lock()
	p.nextAttempt = due
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.nextAttempt = time.Time{}
		p.mu.Unlock()
	}()
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	addr := probeAddress(p.cam.URL)
	if addr == "" || p.opts.ProbeInterval <= 0 {
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		return false
	}
	reachable := probe(ctx, addr, p.opts.ProbeInterval)
	tick := time.NewTicker(p.opts.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		case <-tick.C:
			up := probe(ctx, addr, p.opts.ProbeInterval)
			if up && !reachable {
				return true
			}
			reachable = up
		}
	}
}

// probeAddress is the host:port a camera's RTSP server listens on, from
// its URL (554 for rtsp, 322 for rtsps when the URL names no port); "" when
// the URL does not parse.
func probeAddress(rawURL string) string {
	u, err := base.ParseURL(rawURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// probe tells whether addr accepts a TCP connection within timeout (at
// most 1 s): the cheapest sign of life an RTSP camera gives, and one every
// camera understands.
func probe(ctx context.Context, addr string, timeout time.Duration) bool {
	d := net.Dialer{Timeout: min(timeout, time.Second)}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// panicError wraps a recovered panic value.
func panicError(where string, r any) error {
	return fmt.Errorf("panic in %s: %v", where, r)
}

// attempt runs one RTSP session until it fails or ctx ends. It returns how
// long the session recorded.
func (p *Pipeline) attempt(ctx context.Context) (healthy time.Duration, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("pipeline panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fail(ReasonPanic, panicError("pipeline", r))
		}
		p.mu.Lock()
		if !p.recording.IsZero() {
			healthy = time.Since(p.recording)
		}
		p.recording = time.Time{}
		p.mu.Unlock()
	}()

	u, err := base.ParseURL(p.cam.URL)
	if err != nil {
		return 0, fail(ReasonConfig, errors.New("invalid camera URL"))
	}
	var dial func(context.Context, string, string) (net.Conn, error)
	if p.opts.grid != nil {
		dial = p.opts.grid.dial // read once per tick of the grid, not per packet
	}
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: p.opts.ReadTimeout,
		DialContext: dial,
		OnDecodeError: func(err error) {
			p.log.Debug("decode error", "err", err)
		},
		OnPacketsLost:     func(n uint64) { p.log.Debug("packets lost", "count", n) },
		OnTransportSwitch: func(err error) { p.log.Info("transport switch", "err", err) },
	}
	switch p.cam.Transport {
	case "", "tcp":
		t := gortsplib.TransportTCP
		c.Transport = &t
	case "udp":
		t := gortsplib.TransportUDP
		c.Transport = &t
	case "auto":
	default:
		return 0, fail(ReasonConfig, fmt.Errorf("unknown transport %q (want tcp, udp or auto)", p.cam.Transport))
	}
	if err := c.Start2(); err != nil {
		return 0, fail(ReasonUnreachable, fmt.Errorf("start client: %w", err))
	}
	defer c.Close()
	stopClose := context.AfterFunc(sctx, c.Close)
	defer stopClose()

	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, fmt.Errorf("describe: %w", connectError(err))
	}
	s, err := p.newSession(desc, cancel)
	if err != nil {
		return 0, err
	}
	for _, m := range s.medias {
		if _, err := c.Setup(desc.BaseURL, m, 0, 0); err != nil {
			return 0, fmt.Errorf("setup: %w", connectError(err))
		}
	}
	s.register(c)

	s.lastVideo.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	stopWriter := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); s.writeLoop(stopWriter) }()
	go func() { defer wg.Done(); s.watch(sctx) }()
	defer func() {
		cancel(nil)
		close(stopWriter)
		wg.Wait()
	}()

	if _, err := c.Play(nil); err != nil {
		return 0, fmt.Errorf("play: %w", connectError(err))
	}
	s.lastVideo.Store(time.Now().UnixNano())
	p.setState(StateConnecting, nil)
	p.mu.Lock()
	p.codec = s.codecName
	p.mu.Unlock()
	p.log.Info("camera connected", "url", redactURL(p.cam.URL), "codec", s.codecName)

	werr := make(chan error, 1)
	go func() { werr <- c.Wait() }()
	select {
	case err = <-werr:
		if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	case <-sctx.Done():
		c.Close()
		<-werr
		err = context.Cause(sctx)
	}
	if err == nil {
		err = fail(ReasonClosed, errors.New("connection closed"))
	}
	return 0, err
}

// item is one unit of the writer queue. A non-nil stream begins a new
// Stream before the sample is written.
type item struct {
	stream *storage.Stream
	sample storage.Sample
}

// session is the state of one RTSP connection.
type session struct {
	p      *Pipeline
	cancel context.CancelCauseFunc
	medias []*description.Media

	videoMedia  *description.Media
	videoFormat format.Format
	audioMedia  *description.Media
	audioFormat *format.MPEG4Audio
	codecName   string

	queue     *itemQueue
	lastVideo atomic.Int64

	// emit state, shared by the video and audio callbacks (which run on
	// different goroutines with UDP).
	mu         sync.Mutex
	stream     *storage.Stream
	needBegin  bool
	needSync   bool
	video      *videoRemuxer
	audioTrack int
	// vtime and atime map the camera's timestamps onto the server clock;
	// cutPending asks for a new segment at the next keyframe after a
	// discontinuity.
	vtime, atime *timeline
	cutPending   bool
}

func (p *Pipeline) newSession(desc *description.Session, cancel context.CancelCauseFunc) (*session, error) {
	s := &session{p: p, cancel: cancel, queue: newItemQueue(p.opts.QueueSize), needBegin: true, audioTrack: -1,
		vtime: newTimeline(90000)}
	var h264f *format.H264
	var h265f *format.H265
	if m := desc.FindFormat(&h264f); m != nil {
		s.videoMedia, s.videoFormat = m, h264f
		sps, pps := h264f.SafeParams()
		s.video = newVideoRemuxer(false, nil, sps, pps)
		s.codecName = "H264"
	} else if m := desc.FindFormat(&h265f); m != nil {
		s.videoMedia, s.videoFormat = m, h265f
		vps, sps, pps := h265f.SafeParams()
		s.video = newVideoRemuxer(true, vps, sps, pps)
		s.codecName = "H265"
	} else {
		return nil, fail(ReasonNoMedia, errors.New("camera offers no H.264 or H.265 video"))
	}
	s.medias = append(s.medias, s.videoMedia)
	var aac *format.MPEG4Audio
	if m := desc.FindFormat(&aac); m != nil && aac.Config != nil && m != s.videoMedia {
		s.audioMedia, s.audioFormat = m, aac
		s.atime = newTimeline(int64(aac.ClockRate()))
		s.medias = append(s.medias, m)
		s.codecName += "+AAC"
	}
	for _, m := range desc.Medias {
		if m.Type == description.MediaTypeAudio && m != s.audioMedia && len(m.Formats) > 0 {
			p.log.Info("audio track not recorded", "codec", m.Formats[0].Codec())
		}
	}
	return s, nil
}

// guard recovers a panic on a gortsplib goroutine and ends the session.
func (s *session) guard(where string) {
	if r := recover(); r != nil {
		s.p.log.Error("pipeline panic", "where", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.cancel(panicError(where, r))
	}
}

func (s *session) register(c *gortsplib.Client) {
	var (
		asm *auAssembler
		err error
	)
	switch f := s.videoFormat.(type) {
	case *format.H264:
		asm, err = newAUAssembler(false, f.PacketizationMode, 0)
	case *format.H265:
		asm, err = newAUAssembler(true, 0, f.MaxDONDiff)
	}
	if err != nil {
		s.cancel(fail(ReasonDecode, err))
		return
	}
	vm := s.videoMedia
	emit := func(au *accessUnit) {
		s.p.framesReceived.Add(1)
		s.lastVideo.Store(time.Now().UnixNano())
		if au.ptsOK {
			s.onVideo(au, au.pts)
		}
	}
	c.OnPacketRTP(vm, s.videoFormat, func(pkt *rtp.Packet) {
		defer s.guard("video callback")
		s.p.bytesReceived.Add(uint64(len(pkt.Payload)))
		// The timestamp decoder must see every packet: it starts on the
		// first one that carries PTS = DTS (IDR, SPS, PPS).
		pts, ok := c.PacketPTS2(vm, pkt)
		// A dropped packet or NAL unit (a lost fragment, a stream joined
		// mid-frame, garbage) costs only what it held.
		_ = asm.Push(pkt, pts, ok, emit)
	})
	if s.audioMedia != nil {
		am, af := s.audioMedia, s.audioFormat
		adec, err := af.CreateDecoder()
		if err != nil {
			s.cancel(fail(ReasonDecode, fmt.Errorf("AAC decoder: %w", err)))
			return
		}
		c.OnPacketRTP(am, af, func(pkt *rtp.Packet) {
			defer s.guard("audio callback")
			s.p.bytesReceived.Add(uint64(len(pkt.Payload)))
			pts, ok := c.PacketPTS2(am, pkt)
			aus, err := adec.Decode(pkt)
			if err != nil || !ok {
				return
			}
			s.onAudio(aus, pts)
		})
	}
}

func (s *session) onVideo(au *accessUnit, pts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	pts, dup, jump, cut := s.vtime.place(pts, now)
	if dup {
		return // a duplicated frame: same timestamp again
	}
	if jump {
		if cut {
			s.p.log.Warn("camera clock jumped: timestamps follow the server clock, new segment at the next keyframe")
			s.cutPending = true
			s.video.freshAtIDR = true
		} else {
			s.p.log.Debug("camera clock jumped again: timestamps remapped within the segment")
		}
	}
	pieces, dts, off, sync, resized, err := s.video.remux(au, pts)
	if resized {
		s.needBegin = true
	}
	if err != nil {
		if !errors.Is(err, errSkip) {
			s.p.log.Debug("video frame skipped", "err", err)
		}
		return
	}
	smp := storage.Sample{Track: 0, DTS: dts, PTSOffset: off, Sync: sync, Pieces: pieces, Arrival: now}
	if sync && s.cutPending {
		s.cutPending = false
		s.needBegin = true
	}
	var begin *storage.Stream
	if s.needBegin {
		if !sync {
			return
		}
		begin = s.newStream()
	}
	if s.needSync && !sync {
		s.p.framesDropped.Add(1)
		return
	}
	if !s.enqueue(item{stream: begin, sample: smp}) {
		s.needSync = true
		return
	}
	s.needSync = false
	if begin != nil {
		s.stream, s.needBegin = begin, false
	}
	s.p.hub.publish(Frame{Stream: s.stream, Sample: smp}, s.p.standbyMode() != StandbyHot)
}

func (s *session) newStream() *storage.Stream {
	st := &storage.Stream{Camera: s.p.cam.ID, Home: s.p.cam.Home}
	st.Tracks = append(st.Tracks, storage.Track{Codec: s.video.codec(), TimeScale: 90000})
	s.audioTrack = -1
	if s.audioFormat != nil {
		st.Tracks = append(st.Tracks, storage.Track{
			Codec:     &mp4.CodecMPEG4Audio{Config: *s.audioFormat.Config},
			TimeScale: uint32(s.audioFormat.ClockRate()),
		})
		s.audioTrack = 1
	}
	return st
}

func (s *session) onAudio(aus [][]byte, pts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil || s.audioTrack < 0 {
		return // nothing to attach audio to before the first key frame
	}
	now := time.Now()
	for i, au := range aus {
		dts, dup, _, _ := s.atime.place(pts+int64(i)*1024, now)
		if dup {
			continue
		}
		smp := storage.Sample{Track: s.audioTrack, DTS: dts, Sync: true, Payload: au, Arrival: now}
		if s.enqueue(item{sample: smp}) {
			s.p.hub.publish(Frame{Stream: s.stream, Sample: smp}, s.p.standbyMode() != StandbyHot)
		}
	}
}

// enqueue hands an item to the writer without ever blocking.
func (s *session) enqueue(it item) bool {
	if s.queue.push(it) {
		return true
	}
	s.p.framesDropped.Add(1)
	return false
}

// writeLoop is the only place that touches the Sink.
func (s *session) writeLoop(stop <-chan struct{}) {
	var w SampleWriter
	defer func() {
		if r := recover(); r != nil {
			s.p.log.Error("pipeline panic", "where", "writer", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.cancel(panicError("writer", r))
			// After a panic the writer's state is unknown; closing it may
			// panic again, which must not take the process down.
			func() {
				defer func() { _ = recover() }()
				if w != nil {
					_ = w.Close()
				}
			}()
			return
		}
		if w != nil {
			if err := w.Close(); err != nil {
				s.p.log.Warn("close stream", "err", err)
			}
		}
	}()
	writeFailing := false // log one line per failure streak, not per frame
	// cur is the stream the samples belong to now; begun the stream w
	// writes. They differ after a new stream began, and while w is nil
	// (a hot standby holds, or was just taken over).
	var cur, begun *storage.Stream
	held := ring{window: s.p.opts.StandbyWindow, maxBytes: s.p.opts.StandbyMaxBytes}
	defer held.close()  // the arena goes back at once, not at the next GC
	ringFailed := false // log one line per session
	holding := false    // the last sample was held: the next write is a takeover
	keyframe := func() {
		s.p.lastKeyframe.Store(time.Now().UnixNano())
		s.p.mu.Lock()
		first := s.p.state != StateRecording
		s.p.mu.Unlock()
		if first {
			s.p.setState(StateRecording, nil)
		}
	}
	write := func(stream *storage.Stream, smp storage.Sample) bool {
		if stream == nil {
			return true
		}
		if w == nil || stream != begun {
			if smp.Track != 0 || !smp.Sync {
				return true // a file starts at a keyframe
			}
			if w != nil {
				if err := w.Close(); err != nil {
					s.p.log.Warn("close stream", "err", err)
				}
				w = nil
			}
			nw, err := s.p.opts.Sink.Begin(*stream)
			if err != nil {
				s.cancel(fail(ReasonWriteError, fmt.Errorf("storage: begin stream: %w", err)))
				return false
			}
			w, begun = nw, stream
		}
		if err := w.Write(smp); err != nil {
			// A write error (a full disk, an I/O error) is storage's to
			// handle: it alarms, frees space and starts a new file at the
			// next keyframe. Ending the session would only add an offline
			// alarm and a reconnect backoff to the footage lost.
			if !writeFailing {
				s.p.log.Warn("storage write failed, recording goes on at the next keyframe", "err", err)
			}
			writeFailing = true
			return true
		}
		writeFailing = false
		if smp.Track == 0 && smp.Sync {
			keyframe()
		}
		return true
	}
	// takeOver writes what a hot standby held, once it no longer is one:
	// the ring first, from its first keyframe, which is at or before the
	// home's last durable footage (see StandbyWindow), then (by the
	// caller) the live samples, on the same session, and marks the
	// takeover once the ring is written. False once the session must end.
	takeOver := func() bool {
		took := holding
		holding = false
		if u := held.usable(); len(u) > 0 {
			s.p.log.Info("standby taken over: writing the held samples", "samples", len(u),
				"from", held.at(u[0]), "span", (u[len(u)-1].arrival - u[0].arrival).Round(time.Millisecond))
			began := time.Now()
			if !held.drain(write) {
				return false
			}
			s.p.log.Info("standby ring written", "took", time.Since(began).Round(10*time.Microsecond))
		}
		if took {
			s.p.tookOver()
		}
		return true
	}
	handle := func(it item) bool {
		if it.stream != nil {
			cur = it.stream
		}
		if s.p.standbyMode() == StandbyHot {
			holding = true
			// Hold: written nowhere. A file this pipeline was writing
			// (the camera went home) ends here.
			if w != nil {
				if err := w.Close(); err != nil {
					s.p.log.Warn("close stream", "err", err)
				}
				w, begun = nil, nil
			}
			held.add(cur, it.sample)
			if held.err != nil && !ringFailed {
				ringFailed = true
				s.p.log.Warn("hot standby ring unavailable: this camera's takeover will wait for a keyframe", "err", held.err)
			}
			if it.sample.Track == 0 && it.sample.Sync {
				s.p.mu.Lock()
				s.p.heldBytes, s.p.heldSpan, s.p.heldNeed, s.p.heldPages = int64(held.bytes), held.span(), held.need(), held.resident()
				s.p.mu.Unlock()
				keyframe()
			}
			return true
		}
		if !takeOver() {
			return false
		}
		return write(cur, it.sample)
	}
	// drain writes what waits; false once the session must end
	drain := func() bool {
		for {
			it, ok := s.queue.pop()
			if !ok {
				return true
			}
			if !handle(it) {
				return false
			}
		}
	}
	for drain() {
		select {
		case <-s.queue.ready:
		case <-s.p.standbyChanged:
			// taken over: the ring now, not at the next sample
			if s.p.standbyMode() != StandbyHot && !takeOver() {
				return
			}
		case <-stop:
			drain() // what was handed over before the stop is written
			return
		}
	}
}

// watch ends a session whose camera stopped sending video and keeps the
// bitrate estimate fresh.
func (s *session) watch(ctx context.Context) {
	// on the process's wall-clock grid, with every other camera's watch
	// and the reads' ticks (see wallgrid)
	tick := min(time.Second, s.p.opts.ReadTimeout/2)
	t := time.NewTimer(wallgrid.Until(tick))
	defer t.Stop()
	lastBytes, lastT := s.p.bytesReceived.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			t.Reset(wallgrid.Until(tick))
			b := s.p.bytesReceived.Load()
			if dt := now.Sub(lastT).Seconds(); dt > 0 {
				bps := float64(b-lastBytes) * 8 / dt
				s.p.mu.Lock()
				if s.p.bitrate == 0 {
					s.p.bitrate = bps
				} else {
					s.p.bitrate = 0.7*s.p.bitrate + 0.3*bps
				}
				s.p.mu.Unlock()
			}
			lastBytes, lastT = b, now
			idle := now.Sub(time.Unix(0, s.lastVideo.Load()))
			if idle > s.p.opts.ReadTimeout {
				s.cancel(fail(ReasonStall, fmt.Errorf("camera stalled: no video for %s", idle.Round(100*time.Millisecond))))
				return
			}
		}
	}
}
