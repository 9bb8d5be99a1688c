// Package live re-streams the cameras this server records to RTSP viewers
// at rtsp://host:port/<home>/<camera>. The camera is pulled once, by the
// recorder; viewers are fed from its live fan-out (recorder.Manager
// Subscribe), which drops frames for a slow subscriber instead of waiting,
// so no viewer can hold up recording.
//
// Slow viewers: gortsplib gives every session its own write queue
// (Server.WriteQueueSize packets). ServerStream.WritePacketRTP never blocks;
// when a viewer's queue is full the packet is dropped for that viewer and
// OnStreamWriteError is called, where this package closes the viewer's
// session. A viewer whose socket stops draining is therefore disconnected,
// and the others are not affected. Each viewer socket gets a bounded kernel
// send buffer (Options.ViewerSendBuffer), so the queue starts filling, and
// a stalled viewer is dropped, seconds after it stops reading rather than
// after the kernel has buffered megabytes for it.
package live

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"

	"github.com/buddyrec/buddyrec/recorder"
)

// Source is the live fan-out of the recorder (*recorder.Manager).
type Source interface {
	Subscribe(id string, buf int) (<-chan recorder.Frame, func())
}

// Options configures a Server.
type Options struct {
	// Listen is the RTSP TCP address ("127.0.0.1:0" picks a port; see Addr).
	Listen string
	// Source delivers the frames of recorded cameras. Required.
	Source Source
	// Cameras lists the camera ids ("home/name") the site records now
	// (Source relays those recorded elsewhere); others answer 404.
	Cameras func() []string
	// MaxViewers bounds concurrent viewers over all cameras; beyond it
	// DESCRIBE and SETUP answer 453 Not Enough Bandwidth. 0 is unlimited.
	MaxViewers int
	// ViewerLimit, when set, is read at each new viewer instead of
	// MaxViewers, so the bound can change while the server runs (a config
	// reload); viewers already watching are not cut.
	ViewerLimit func() int
	// OtherViewers counts viewers of other kinds (browser views) that share
	// MaxViewers; nil counts none.
	OtherViewers func() int
	// Authorize checks a viewer's user and password; nil means open.
	// Credentials are taken from RTSP Basic authentication: an arbitrary
	// user/password check cannot verify a Digest response (that needs the
	// password in advance), so only Basic is offered when Authorize is set.
	// remote is the viewer's IP address, so that failed logins can be
	// throttled per address.
	Authorize func(remote, user, pass string) bool
	// WrapListener, when set, wraps the RTSP listener, e.g. with the
	// connection limits of internal/connlimit, so that a flood of viewers'
	// connections cannot take the descriptors recording needs.
	WrapListener func(net.Listener) net.Listener
	// StartTimeout is how long the first DESCRIBE of a camera waits for a
	// keyframe to learn the stream's parameters (default 3s).
	StartTimeout time.Duration
	// QueueSize is the number of frames buffered between the recorder and
	// the RTP packetizer of one camera (default 256).
	QueueSize int
	// WriteQueueSize is gortsplib's per-viewer packet queue (default 512,
	// a power of two).
	WriteQueueSize int
	// ViewerSendBuffer is the kernel send buffer (SO_SNDBUF) of each viewer
	// connection, in bytes (default 256 KiB; negative leaves the kernel's
	// autotuning). It bounds how long a viewer that stopped reading goes
	// unnoticed: only once this buffer is full does gortsplib's write block
	// and its write queue fill, which disconnects the viewer. Autotuning
	// grows it to 4 MiB on Linux, about 15 s of a 2 Mbit/s camera; 256 KiB
	// (the kernel doubles it) still carries over 40 Mbit/s at 100 ms RTT.
	ViewerSendBuffer int
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Server is a running live RTSP server.
type Server struct {
	o    Options
	log  *slog.Logger
	rtsp *gortsplib.Server
	addr string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	feeds    map[string]*feed
	sessions map[*gortsplib.ServerSession]*feed // viewers that completed SETUP
	dropping map[*gortsplib.ServerSession]bool  // slow viewers being closed
	closed   bool
}

// Start binds the RTSP address and serves until Close or ctx ends.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Source == nil {
		return nil, errors.New("start live server: no source")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.WriteQueueSize <= 0 {
		o.WriteQueueSize = 512
	}
	if o.ViewerSendBuffer == 0 {
		o.ViewerSendBuffer = 256 << 10
	}
	s := &Server{o: o, log: o.Logger, feeds: map[string]*feed{}, sessions: map[*gortsplib.ServerSession]*feed{},
		dropping: map[*gortsplib.ServerSession]bool{}}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.rtsp = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    o.Listen,
		WriteQueueSize: o.WriteQueueSize,
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   5 * time.Second,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			s.addr = ln.Addr().String()
			if o.ViewerSendBuffer > 0 {
				ln = sendBufferListener{Listener: ln, size: o.ViewerSendBuffer}
			}
			if o.WrapListener != nil {
				ln = o.WrapListener(ln)
			}
			return ln, nil
		},
	}
	if o.Authorize != nil {
		s.rtsp.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodBasic}
	}
	if err := s.rtsp.Start(); err != nil {
		s.cancel()
		return nil, fmt.Errorf("start live server on %s: %w", o.Listen, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-s.ctx.Done()
		s.shutdown()
	}()
	return s, nil
}

// Addr is the bound RTSP address.
func (s *Server) Addr() string { return s.addr }

// Viewers is the number of viewers set up now.
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close disconnects every viewer, stops the feeds and waits for them. It
// is idempotent; the end of Start's ctx stops the server the same way.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) shutdown() {
	s.mu.Lock()
	s.closed = true
	feeds := s.feeds
	s.feeds = map[string]*feed{}
	s.mu.Unlock()
	for _, f := range feeds {
		f.stop()
	}
	s.rtsp.Close()
	for _, f := range feeds {
		f.wait()
	}
}

// recorded reports whether camera id is recorded here now.
func (s *Server) recorded(id string) bool {
	if s.o.Cameras == nil {
		return false
	}
	for _, c := range s.o.Cameras() {
		if c == id {
			return true
		}
	}
	return false
}

// cameraOf turns an RTSP path ("/home/name", or with a trailing track
// suffix from SETUP) into a camera id.
func cameraOf(path string) string {
	path = strings.Trim(path, "/")
	return path
}

// authorize checks the viewer's Basic credentials.
func (s *Server) authorize(conn *gortsplib.ServerConn, req *base.Request) (*base.Response, error) {
	if s.o.Authorize == nil {
		return nil, nil
	}
	remote := ""
	if a, ok := conn.NetConn().RemoteAddr().(*net.TCPAddr); ok {
		remote = a.IP.String()
	}
	user, pass, ok := basicCredentials(req)
	if ok && s.o.Authorize(remote, user, pass) {
		return nil, nil
	}
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}

func basicCredentials(req *base.Request) (string, string, bool) {
	for _, v := range req.Header["Authorization"] {
		enc, ok := strings.CutPrefix(v, "Basic ")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil {
			return "", "", false
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		return user, pass, ok
	}
	return "", "", false
}

// fullLocked reports whether one more viewer would exceed MaxViewers;
// s.mu must be held.
func (s *Server) fullLocked() bool {
	n := len(s.sessions)
	if s.o.OtherViewers != nil {
		n += s.o.OtherViewers()
	}
	limit := s.o.MaxViewers
	if s.o.ViewerLimit != nil {
		limit = s.o.ViewerLimit()
	}
	return limit > 0 && n >= limit
}

var errNotEnoughBandwidth = errors.New("viewer limit reached")

// getFeed returns the running feed of camera id, starting one if needed,
// and waits until it knows the stream's parameters.
func (s *Server) getFeed(id string) (*feed, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("server closing")
	}
	f := s.feeds[id]
	if f == nil || f.isDone() {
		f = newFeed(s, id)
		s.feeds[id] = f
		f.start()
	}
	s.mu.Unlock()
	select {
	case <-f.ready:
		if f.stream == nil {
			return nil, fmt.Errorf("camera %s: %w", id, f.err)
		}
		return f, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := s.authorize(ctx.Conn, ctx.Request); err != nil {
		return res, nil, err
	}
	return s.open(cameraOf(ctx.Path))
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := s.authorize(ctx.Conn, ctx.Request); err != nil {
		return res, nil, err
	}
	id := cameraOf(ctx.Path)
	s.mu.Lock()
	if f, ok := s.sessions[ctx.Session]; ok { // second track of the same viewer
		s.mu.Unlock()
		return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
	}
	s.mu.Unlock()
	res, _, err := s.open(id)
	if err != nil {
		return res, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fullLocked() {
		return &base.Response{StatusCode: base.StatusNotEnoughBandwidth}, nil, errNotEnoughBandwidth
	}
	f := s.feeds[id]
	if f == nil || f.stream == nil || f.isDone() {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, fmt.Errorf("camera %s went away", id)
	}
	s.sessions[ctx.Session] = f
	f.viewers++
	return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
}

// open checks the camera and the viewer limit and returns its stream.
func (s *Server) open(id string) (*base.Response, *gortsplib.ServerStream, error) {
	if !s.recorded(id) {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, fmt.Errorf("camera %q is not recorded here", id)
	}
	s.mu.Lock()
	full := s.fullLocked()
	s.mu.Unlock()
	if full {
		return &base.Response{StatusCode: base.StatusNotEnoughBandwidth}, nil, errNotEnoughBandwidth
	}
	f, err := s.getFeed(id)
	if err != nil {
		s.log.Warn("live stream unavailable", "camera", id, "err", err)
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *Server) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose: the
// last viewer leaving stops the camera's feed.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	delete(s.dropping, ctx.Session)
	f, ok := s.sessions[ctx.Session]
	if ok {
		delete(s.sessions, ctx.Session)
		f.viewers--
		if f.viewers == 0 && s.feeds[f.id] == f {
			delete(s.feeds, f.id)
		} else {
			f = nil
		}
	}
	s.mu.Unlock()
	if ok && f != nil {
		f.stop()
	}
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError:
// a viewer whose write queue is full is disconnected rather than waited
// for. gortsplib calls this for every packet the viewer misses until its
// session has ended, so the viewer is logged and closed only once.
func (s *Server) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	var full liberrors.ErrServerWriteQueueFull
	if !errors.As(ctx.Error, &full) {
		return
	}
	s.mu.Lock()
	if s.dropping[ctx.Session] {
		s.mu.Unlock()
		return
	}
	s.dropping[ctx.Session] = true
	s.mu.Unlock()
	s.log.Info("dropping slow live viewer", "path", ctx.Session.SetuppedPath())
	// called from inside ServerStream.WritePacketRTP, with the stream
	// locked: never wait for the session here
	go ctx.Session.Close()
}

// sendBufferListener sets the kernel send buffer of every accepted
// connection (see Options.ViewerSendBuffer).
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// best effort: a viewer on a socket we could not tune is still
		// dropped, only later
		tc.SetWriteBuffer(l.size) //nolint:errcheck
	}
	return c, nil
}
