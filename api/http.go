package api

import (
	"encoding/json"
	"net/http"
)

// Error is the body of every error answer of the API: {"error": "..."},
// the message saying what was wrong with the request, never a secret.
type Error struct {
	Error string `json:"error"`
}

// WriteJSON answers with v as JSON, the one way every part of the API
// (node, export, events, web) writes a body: never cached, since each
// answer is the site as of now, and indented for a technician reading it
// with curl. A write error means the client went away; there is no one
// left to tell.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError answers with code and an Error naming msg.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, Error{Error: msg})
}
