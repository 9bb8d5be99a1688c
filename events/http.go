package events

import (
	"encoding/json"
	"errors"
	"github.com/buddyrec/buddyrec/api"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Paging limits of the HTTP API.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// listResponse is the JSON answer of GET /api/v1/events.
type listResponse struct {
	Events []Event `json:"events"`
	Next   string  `json:"next"`
}

// ackRequest is the optional JSON body of POST /api/v1/events/{id}/ack.
type ackRequest struct {
	By string `json:"by"`
}

// HandlerOptions configure the event API.
type HandlerOptions struct {
	// AckedBy names whom an acknowledgement of request r is recorded
	// under, given the by its body claims (maybe ""). Access control knows
	// who made the request; a body can claim anything, so a logged-in user
	// must not be able to acknowledge in another's name. Nil records the
	// claim, for a log without access control (tests).
	AckedBy func(r *http.Request, claimed string) string
}

// Handler serves the event API:
//
//	GET  /api/v1/events?since=RFC3339&limit=N&before=ID  → {"events":[...],"next":"ID"}
//	POST /api/v1/events/{id}/ack  body {"by":"name"} (optional) → the acked event
//
// Events come newest first; pass next as before to get the following page.
// Bad parameters answer 400 with {"error":"..."} naming the parameter.
func (l *Log) Handler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/events", l.serveList)
	mux.HandleFunc("POST /api/v1/events/{id}/ack", func(w http.ResponseWriter, r *http.Request) { l.serveAck(w, r, o) })
	return mux
}

func (l *Log) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := api.ParseTime("since", s)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		since = t
	}
	limit := DefaultPageSize
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "limit: want a positive integer")
			return
		}
		limit = min(n, MaxPageSize)
	}
	before := q.Get("before")
	if before != "" {
		if _, ok := parseID(before); !ok {
			writeError(w, http.StatusBadRequest, "before: not an event id")
			return
		}
	}
	evs, next, err := l.List(since, before, limit)
	if err != nil {
		l.log.Error("list events", "err", err)
		writeError(w, http.StatusInternalServerError, "event log unavailable")
		return
	}
	if evs == nil {
		evs = []Event{}
	}
	writeJSON(w, http.StatusOK, listResponse{Events: evs, Next: next})
}

func (l *Log) serveAck(w http.ResponseWriter, r *http.Request, o HandlerOptions) {
	id := r.PathValue("id")
	var req ackRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, `body: want {"by":"name"}`)
			return
		}
	}
	by := req.By
	if o.AckedBy != nil {
		by = o.AckedBy(r, req.By)
	}
	if err := l.Ack(id, by); err != nil {
		if errors.Is(err, ErrNotFound) {
			writeError(w, http.StatusNotFound, "id: no such event")
			return
		}
		l.log.Error("ack event", "id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "event log unavailable")
		return
	}
	e, err := l.Get(id)
	if err != nil {
		writeError(w, http.StatusNotFound, "id: no such event")
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// writeJSON and writeError write an API answer: api.WriteJSON and
// api.WriteError under this package's names.
var (
	writeJSON  = api.WriteJSON
	writeError = api.WriteError
)
