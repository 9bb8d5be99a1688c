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
	// Conditions let the event that clears an alarm resolve it: writes
	// working again resolve the write error (or full disk) of the same
	// camera's writer. disk.low has no clearing report yet.
	writes := string(events.TypeStorageWriteError) + "/" + a.Camera
	full := string(events.TypeDiskFull) + "/" + a.Camera
	switch a.Kind {
	case storage.AlarmDiskFull:
		e.Type, e.Condition = events.TypeDiskFull, full
	case storage.AlarmDiskLow:
		e.Type, e.Condition = events.TypeDiskLow, string(events.TypeDiskLow)
	case storage.AlarmWriteError:
		e.Type, e.Condition = events.TypeStorageWriteError, writes
	case storage.AlarmRecovered:
		e.Type, e.Severity, e.Resolves = events.TypeStorageRecovered, events.SeverityInfo, []string{writes, full}
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

// onStorageAlarm logs a storage alarm as its event.
func (n *Node) onStorageAlarm(a storage.Alarm) { n.appendEvent(storageEvent(n.cfg.Name, a)) }

// onWorkerStorageAlarm logs a worker's storage alarm as this server's
// event and, for a full disk, has retention free space now: only this
// process's store can delete, and its next check of free space may come
// after the disk refused more parts.
func (n *Node) onWorkerStorageAlarm(a storage.Alarm) {
	if a.Kind == storage.AlarmDiskFull {
		n.store.RequestSpace()
	}
	n.onStorageAlarm(a)
}

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
