// Package camsim serves synthetic RTSP cameras that loop a recorded clip in
// real time. Tests, demos and benchmarks start it in-process to get cameras
// with known content and controllable faults (drops, stalls, garbage,
// passwords) without any hardware.
package camsim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Fault describes how one camera misbehaves. The zero value is a healthy
// camera. Durations count from the start of each playing session, so a
// client that reconnects meets the same fault again.
type Fault struct {
	// DropAfter closes the client's connection this long after PLAY.
	DropAfter time.Duration
	// StallAfter stops sending media this long after PLAY while keeping the
	// TCP connection open, like a hung camera.
	StallAfter time.Duration
	// Garbage mixes undecodable RTP payloads and junk NAL units into the
	// stream.
	Garbage bool
	// User and Pass, when User is non-empty, make the camera require these
	// credentials (basic or digest).
	User, Pass string
	// JumpEvery steps the camera's clock (the RTP timestamps of every
	// track) by JumpBy this often, counted from PLAY: a negative JumpBy
	// steps back, like a camera whose NTP sync keeps resetting it.
	JumpEvery time.Duration
	JumpBy    time.Duration
	// Duplicates sends each of the first Duplicates video frames after a
	// jump twice, like cameras that replay their buffer after a clock step.
	Duplicates int
	// MaxSessions, when positive, is how many sessions the camera serves
	// at once: a SETUP beyond it is refused with 453 Not Enough Bandwidth,
	// as cameras with a stream limit do. The sessions it serves are never
	// disturbed by the refusal.
	MaxSessions int
}

// Options configures a Server.
type Options struct {
	// Listen is the RTSP TCP address; port 0 picks a free port (see Addr).
	Listen string
	// Cameras is how many cameras to serve, as paths cam1..camN.
	Cameras int
	// Clip is an MPEG-TS file with H.264 or H.265 video and optional AAC.
	// Empty selects the default clip for Codec in ClipDir.
	Clip string
	// Codec picks the default clip: "h264" (default, with AAC) or "h265".
	Codec string
	// ClipDir is where the default clips live (default "testdata").
	ClipDir string
	// Faults maps a camera number (1-based) to its fault.
	Faults map[int]Fault
	// UDPRTPAddress and UDPRTCPAddress enable UDP transport; both empty
	// means TCP only.
	UDPRTPAddress, UDPRTCPAddress string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// DefaultClip returns the committed test clip for a codec inside dir.
func DefaultClip(dir, codec string) (string, error) {
	switch codec {
	case "", "h264":
		return filepath.Join(dir, "h264-aac.ts"), nil
	case "h265":
		return filepath.Join(dir, "h265.ts"), nil
	default:
		return "", fmt.Errorf("unknown codec %q (want h264 or h265)", codec)
	}
}

// Server is a running set of synthetic cameras.
type Server struct {
	opts   Options
	log    *slog.Logger
	clip   *clip
	rtsp   *gortsplib.Server
	addr   string
	cams   []*camera
	wg     sync.WaitGroup
	mu     sync.Mutex
	sess   map[*gortsplib.ServerSession]*session
	closed bool
	once   sync.Once
	done   chan struct{} // closed by Close
	// ready is closed once cams is complete: the RTSP server must listen
	// before its streams can be made, so a client may connect first.
	ready chan struct{}
}

type camera struct {
	num      int
	fault    Fault
	describe *gortsplib.ServerStream // only answers DESCRIBE; media go per session
	epoch    time.Time               // when this camera's clip position was 0
	sent     atomic.Int64
}

// session is one client's PLAY session with its own stream, so faults and
// pacing apply per connection.
type session struct {
	cam    *camera
	stream *gortsplib.ServerStream
	desc   *description.Session
	cancel context.CancelFunc
	done   chan struct{}
}

// Start loads the clip and starts serving. ctx bounds the server's life in
// addition to Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Cameras < 1 {
		return nil, fmt.Errorf("camsim: cameras must be at least 1, got %d", opts.Cameras)
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8554"
	}
	if opts.ClipDir == "" {
		opts.ClipDir = "testdata"
	}
	if opts.Clip == "" {
		p, err := DefaultClip(opts.ClipDir, opts.Codec)
		if err != nil {
			return nil, fmt.Errorf("camsim: %w", err)
		}
		opts.Clip = p
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := loadClip(opts.Clip)
	if err != nil {
		return nil, fmt.Errorf("camsim: %w", err)
	}
	s := &Server{opts: opts, log: log, clip: c, sess: map[*gortsplib.ServerSession]*session{}, done: make(chan struct{}), ready: make(chan struct{})}
	s.rtsp = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    opts.Listen,
		UDPRTPAddress:  opts.UDPRTPAddress,
		UDPRTCPAddress: opts.UDPRTCPAddress,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				s.addr = l.Addr().String()
			}
			return l, err
		},
	}
	if err := s.rtsp.Start(); err != nil {
		return nil, fmt.Errorf("camsim: listen %s: %w", opts.Listen, err)
	}
	for i := 1; i <= opts.Cameras; i++ {
		// Each camera's encoder runs from its own moment, like a real
		// camera that was on before anyone connected: a new session joins
		// mid-GOP and waits for the next keyframe. Phases are spread so
		// cameras do not all send keyframes at once.
		epoch := time.Now().Add(-time.Duration(i*137%1000) * time.Millisecond)
		cam := &camera{num: i, fault: opts.Faults[i], epoch: epoch}
		cam.describe = &gortsplib.ServerStream{Server: s.rtsp, Desc: c.description()}
		if err := cam.describe.Initialize(); err != nil {
			s.Close()
			return nil, fmt.Errorf("camsim: camera %d stream: %w", i, err)
		}
		s.cams = append(s.cams, cam)
	}
	close(s.ready)
	if ctx != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-ctx.Done():
				go s.Close()
			case <-s.done:
			}
		}()
	}
	log.Info("camsim serving", "addr", s.addr, "cameras", opts.Cameras, "clip", opts.Clip)
	return s, nil
}

// Addr returns the bound RTSP address (host:port), useful with port 0.
func (s *Server) Addr() string { return s.addr }

// URL returns the RTSP URL of camera i (1-based), with the camera's
// credentials when it requires them.
func (s *Server) URL(i int) string {
	u := url.URL{Scheme: "rtsp", Host: s.addr, Path: "/cam" + strconv.Itoa(i)}
	if i >= 1 && i <= len(s.cams) && s.cams[i-1].fault.User != "" {
		u.User = url.UserPassword(s.cams[i-1].fault.User, s.cams[i-1].fault.Pass)
	}
	return u.String()
}

// Sent returns how many video frames camera i (1-based) has sent, summed
// over all its sessions. Garbage packets are not counted.
func (s *Server) Sent(i int) int {
	if i < 1 || i > len(s.cams) {
		return 0
	}
	return int(s.cams[i-1].sent.Load())
}

// VideoRate is the video frames per second a camera sends in real time:
// the clip's frames over its length. A session that falls behind its
// schedule sends the frames it owes at once, so a count over a window
// far from VideoRate × cameras × window means the sender was held up.
func (s *Server) VideoRate() float64 {
	if s.clip.loop90 <= 0 {
		return 0
	}
	return float64(len(s.clip.video)) * 90000 / float64(s.clip.loop90)
}

// Close stops the server, ends every session and waits for all goroutines.
// It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
		s.rtsp.Close()
		// Sessions end inside rtsp.Close via OnSessionClose; stop any left.
		s.mu.Lock()
		left := make([]*session, 0, len(s.sess))
		for k, ss := range s.sess {
			left = append(left, ss)
			delete(s.sess, k)
		}
		s.mu.Unlock()
		for _, ss := range left {
			ss.stop()
		}
		for _, cam := range s.cams {
			cam.describe.Close()
		}
		s.wg.Wait()
	})
}

func (ss *session) stop() {
	ss.cancel()
	<-ss.done
	ss.stream.Close()
}

func (s *Server) camera(path string) *camera {
	select {
	case <-s.ready:
	case <-s.done:
		return nil
	}
	p := strings.Trim(path, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		p = p[:i]
	}
	n, err := strconv.Atoi(strings.TrimPrefix(p, "cam"))
	if !strings.HasPrefix(p, "cam") || err != nil || n < 1 || n > len(s.cams) {
		return nil
	}
	return s.cams[n-1]
}

func (s *Server) authorize(cam *camera, conn *gortsplib.ServerConn, req *base.Request) (*base.Response, error) {
	if cam.fault.User == "" || conn.VerifyCredentials(req, cam.fault.User, cam.fault.Pass) {
		return nil, nil
	}
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	cam := s.camera(ctx.Path)
	if cam == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	if res, err := s.authorize(cam, ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, cam.describe, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	cam := s.camera(ctx.Path)
	if cam == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	if res, err := s.authorize(cam, ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	if ss := s.sess[ctx.Session]; ss != nil {
		return &base.Response{StatusCode: base.StatusOK}, ss.stream, nil
	}
	if limit := cam.fault.MaxSessions; limit > 0 {
		n := 0
		for _, ss := range s.sess {
			if ss.cam == cam {
				n++
			}
		}
		if n >= limit {
			s.log.Info("camsim refuses a session over the stream limit", "camera", cam.num, "limit", limit)
			return &base.Response{StatusCode: base.StatusNotEnoughBandwidth}, nil, nil
		}
	}
	desc := s.clip.description()
	st := &gortsplib.ServerStream{Server: s.rtsp, Desc: desc}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, fmt.Errorf("stream: %w", err)
	}
	ss := &session{cam: cam, stream: st, desc: desc, done: make(chan struct{})}
	ss.cancel = func() {}
	close(ss.done) // not playing yet
	s.sess[ctx.Session] = ss
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay: it starts the session's
// feeder.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sess[ctx.Session]
	if ss == nil || s.closed {
		return &base.Response{StatusCode: base.StatusSessionNotFound}, nil
	}
	select {
	case <-ss.done:
	default:
		return &base.Response{StatusCode: base.StatusOK}, nil // already playing
	}
	fctx, cancel := context.WithCancel(context.Background())
	ss.cancel = cancel
	ss.done = make(chan struct{})
	conn := ctx.Conn
	s.wg.Add(1)
	go func(done chan struct{}) {
		defer s.wg.Done()
		defer close(done)
		s.feed(fctx, ss, conn)
	}(ss.done)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	ss := s.sess[ctx.Session]
	delete(s.sess, ctx.Session)
	s.mu.Unlock()
	if ss != nil {
		ss.stop()
	}
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError:
// a client that cannot keep up loses packets, as with a real camera. It is
// logged at debug level through Options.Logger; without this handler
// gortsplib prints every dropped packet to the standard logger, thousands
// of lines when a loaded test machine stalls a recorder.
func (s *Server) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	s.log.Debug("camsim dropped a packet to a slow client", "err", ctx.Error)
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (s *Server) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	s.log.Debug("camsim connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

// description builds a fresh SDP description; each stream needs its own
// because gortsplib keys streams by *description.Media.
func (c *clip) description() *description.Session {
	var vf format.Format
	if c.codec == "h265" {
		vf = &format.H265{PayloadTyp: 96, VPS: c.vps, SPS: c.sps, PPS: c.pps}
	} else {
		vf = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: c.sps, PPS: c.pps}
	}
	d := &description.Session{Medias: []*description.Media{{
		Type:    description.MediaTypeVideo,
		Formats: []format.Format{vf},
	}}}
	if c.audioConf != nil {
		d.Medias = append(d.Medias, &description.Media{
			Type: description.MediaTypeAudio,
			Formats: []format.Format{&format.MPEG4Audio{
				PayloadTyp:       97,
				Config:           c.audioConf,
				SizeLength:       13,
				IndexLength:      3,
				IndexDeltaLength: 3,
			}},
		})
	}
	return d
}
