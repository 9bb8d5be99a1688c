package node

import (
	"fmt"

	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/storage"
)

// storageEvent is the event a storage alarm becomes. Recovery that cut
// nothing (the routine after any kill -9: open segments closed) and writes
// working again are information; everything else needs an operator.
func storageEvent(server string, a storage.Alarm) events.Event {
	e := events.Event{Server: server, Severity: events.SeverityAlarm, Text: fmt.Sprintf("storage: %s %s", a.Kind, a.Err)}
	if a.Camera != "" {
		e.Cameras = []string{a.Camera}
	}
	switch a.Kind {
	case storage.AlarmDiskFull:
		e.Type = events.TypeDiskFull
	case storage.AlarmDiskLow:
		e.Type = events.TypeDiskLow
	case storage.AlarmWriteError:
		e.Type = events.TypeStorageWriteError
	case storage.AlarmRecovered:
		e.Type, e.Severity = events.TypeStorageRecovered, events.SeverityInfo
	case storage.AlarmRecovery:
		e.Type = events.TypeStorageRecovery
		if !a.Lost {
			e.Severity = events.SeverityInfo
		} else {
			e.Text = "storage: crash recovery cut footage: " + a.Err
		}
	default:
		e.Type = events.Type("storage." + a.Kind)
	}
	return e
}

// onStorageAlarm logs a storage alarm as its event. It replaces
// storageAlarm in control.go, which is left for the control/ move to
// delete.
func (n *Node) onStorageAlarm(a storage.Alarm) { n.appendEvent(storageEvent(n.cfg.Name, a)) }

// webhookEvent is the event an outbox alarm becomes; the kind already is
// the event type.
func webhookEvent(server string, kind events.Type, target, text string) events.Event {
	return events.Event{Server: server, Type: kind, Severity: events.SeverityAlarm, Text: fmt.Sprintf("PSIM target %s: %s", target, text)}
}

// appendEvent records e to the event log; like event, it never blocks
// recording and never fails the caller.
func (n *Node) appendEvent(e events.Event) {
	if _, err := n.events.Append(e); err != nil {
		n.log.Error("append event", "type", e.Type, "err", err)
		return
	}
	n.log.Info("event", "type", e.Type, "severity", e.Severity, "text", e.Text)
}
