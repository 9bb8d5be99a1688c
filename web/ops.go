package web

import (
	"errors"
	"net/http"

	"github.com/buddyrec/buddyrec/api"
)

// Operator is a Source that can also put its server in maintenance and
// restart it (the node can; page tests' fakes may not). The page then
// offers, for this server, Drain / Undrain and Restart buttons.
type Operator interface {
	// Maintenance is where this server's maintenance stands.
	Maintenance() api.Maintenance
	// SetMaintenance drains (on) or undrains this server on behalf of by.
	SetMaintenance(on bool, by string) error
	// Restart drains this server, then restarts its process, on behalf
	// of by; ErrNoRestart when the process cannot restart itself.
	Restart(by string) error
}

// ErrNoRestart: this server was started without a way to restart itself.
var ErrNoRestart = errors.New("this server cannot restart itself")

// opsData is what the page shows of this server's operations.
type opsData struct {
	Maintenance bool
	Stopping    bool
	Since       string
	By          string
	Complete    bool
	Moved, Kept int
}

func opsOf(src Source) *opsData {
	op, ok := src.(Operator)
	if !ok {
		return nil
	}
	m := op.Maintenance()
	d := &opsData{Maintenance: m.Maintenance, Stopping: m.Stopping, By: m.By, Complete: m.Complete, Moved: len(m.Moved), Kept: len(m.Kept)}
	if m.Since != nil {
		d.Since = m.Since.Format("2006-01-02 15:04:05 MST")
	}
	return d
}

// serveOp handles the page's POST /drain, /undrain and /restart (behind
// cross-origin protection, like /ack): it acts for the signed-in user and
// goes back to the page.
func (h *handler) serveOp(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, ok := h.o.Source.(Operator)
		if !ok {
			http.Error(w, "this server offers no operations", http.StatusNotImplemented)
			return
		}
		by := Identity(r.Context())
		if by == "" {
			by = IdentityOpen
		}
		var err error
		switch op {
		case "drain":
			err = o.SetMaintenance(true, by)
		case "undrain":
			err = o.SetMaintenance(false, by)
		case "restart":
			err = o.Restart(by)
		}
		if errors.Is(err, ErrNoRestart) {
			http.Error(w, err.Error(), http.StatusNotImplemented)
			return
		}
		if err != nil {
			h.log.Error("page operation", "op", op, "by", by, "err", err)
			http.Error(w, op+" failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.log.Info("page operation", "op", op, "by", by)
		http.Redirect(w, r, "/#ops", http.StatusSeeOther)
	}
}
