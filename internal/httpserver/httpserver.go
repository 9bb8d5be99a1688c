// Package httpserver builds buddyrec's HTTP servers with the timeouts that
// keep idle or slow clients from holding connections (and so descriptors)
// for ever: the API, the status page, the profiler and the demo's PSIM.
//
// Every request must arrive within ReadTimeout and be answered within
// WriteTimeout; a keep-alive connection idle for IdleTimeout is closed.
// Exports stream for as long as the range takes, so their routes are wrapped
// in LongResponse, which lifts both deadlines for that request only.
package httpserver

import (
	"log"
	"net/http"
	"time"
)

// Timeouts of every buddyrec HTTP server.
const (
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request line and headers (a connection that sends nothing is closed
	// after it).
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request; buddyrec's requests carry
	// at most a small form or JSON body.
	ReadTimeout = 30 * time.Second
	// WriteTimeout bounds writing an answer, except on LongResponse routes.
	WriteTimeout = 60 * time.Second
	// IdleTimeout closes keep-alive connections with no request for this
	// long; a status page polling every 5 s keeps its connection.
	IdleTimeout = 30 * time.Second
)

// New returns a server for h with the package's timeouts; errorLog receives
// the server's own errors (failed TLS handshakes and the like), nil means
// the standard logger.
func New(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          errorLog,
	}
}

// LongResponse serves h without the server's read and write deadlines, for
// answers that stream as long as they need to (exports). The connection
// limits still bound how many such requests a client may hold, and the
// request's context still ends when the client goes away.
func LongResponse(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Errors mean the writer cannot change deadlines (a test
		// recorder); the request then runs under the server's.
		_ = rc.SetWriteDeadline(time.Time{})
		_ = rc.SetReadDeadline(time.Time{})
		h.ServeHTTP(w, r)
	})
}
