package web

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/buddyrec/buddyrec/api"
	"github.com/buddyrec/buddyrec/buddy"
	"github.com/buddyrec/buddyrec/camera"
	"github.com/buddyrec/buddyrec/events"
	"github.com/buddyrec/buddyrec/recorder"
)

var pageTmpl = template.Must(template.ParseFS(assets, "templates/page.html"))

// palette colours the servers on timelines; red is left out because it
// means "dead" and "alarm" on this page.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f"}

type pageData struct {
	Self     string
	Now      string
	Alive    int
	Total    int
	Servers  []serverRow
	Events   []eventRow
	Unacked  int
	EventErr string
	Cameras  []cameraRow
	Unknown  []unknownPeer
	Legend   []legendItem
	Ticks    []tick
	Window   string
	// Zooms are the timeline ranges offered, Range the one shown ("" for
	// the default), FromMs and ToMs the axis in Unix milliseconds for the
	// click-to-time script.
	Zooms        []zoomLink
	Range        string
	FromMs, ToMs int64
	Problems     []string
	// Unrecorded counts the site's cameras nobody can record now.
	Unrecorded int
	// Ops is this server's maintenance and restart, when it offers them.
	Ops *opsData
}

type serverRow struct {
	Name, Address, HTTP           string
	Self                          bool
	State, Class                  string
	Records                       string
	CamsText, ViewersText         string
	CPU, Memory, Storage, StorPct string
	Recordings                    string // buddyrec's own segments and index
	Color                         string
	IfFails                       string // "6 → rec-b, 1 not recorded"; "" when unknown
	Standby                       string // "standby for 2 cameras of rec-a (hot)"; "" for none
}

// FailurePreviewer is a Source that can also preview each server's
// failure with the site's planner (the node does; page tests' fakes may
// not). The page then shows, per server, where its cameras would go.
type FailurePreviewer interface {
	IfFails() []api.IfFails
}

type eventRow struct {
	ID, Time, Severity, Type, Server, Cameras, Text string
	Origin                                          string // the server whose log holds the event
	Class                                           string
	NeedsAck                                        bool
	AckedBy, AckedAt                                string
	ResolvedAt                                      string // the alarm's condition cleared then
}

type recorderRef struct {
	Name, Color string
	Adopted     bool
}

type cameraRow struct {
	ID, Home, State, Class, Since, Error string
	Critical                             bool
	RecordedBy                           []recorderRef
	Bitrate, LastKeyframe                string
	Spans                                []spanRect
	Gaps                                 []gapMark
	Covered                              string
	// View is the camera's view page; "" for footage of a camera no
	// server's configuration has now (the view does not know it).
	View string
	// Codec is what its recorder reports ("H.264", "H.265 + AAC"), "—"
	// while nobody records it.
	Codec, CodecClass string
	// NextAttempt says when an offline camera is tried again.
	NextAttempt string
	// Nobody replaces the recorder list when no server records it.
	Nobody string
	// Disk and Oldest sum what the answering servers keep of the camera;
	// FootageTitle breaks it down per server.
	Disk, Oldest, FootageTitle string
	// Unreachable says where the footage is that no live server holds,
	// e.g. "before 08:25:40 on rec-a, unreachable".
	Unreachable []string
	// Backfill says what the home is copying back from peers, e.g.
	// "rec-a/cam1: 10 min at rec-b, copying 40 %".
	Backfill []string
}

type legendItem struct{ Name, Color string }

// zoomLink is one of the timeline ranges at the top of the cameras table.
type zoomLink struct {
	Range, Name, Href string // "1h", "1 h", "/?range=1h"
	On                bool
}

type unknownPeer struct{ Name, Reason string }

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	zoom, err := zoomOf(r.URL.Query().Get("range"), h.o.Window)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := h.now()
	from := now.Add(-zoom.Window)
	src := h.o.Source
	self := src.Self()
	servers := src.Cluster()
	peers := h.fetchPeers(r.Context(), servers, self, from, now)

	d := &pageData{Self: self, Now: now.Format("2006-01-02 15:04:05 MST"), Window: zoom.Label,
		Range: zoom.Name, FromMs: from.UnixMilli(), ToMs: now.UnixMilli(), Ops: opsOf(src)}
	for _, z := range Zooms {
		d.Zooms = append(d.Zooms, zoomLink{Range: z.Name, Name: z.Label, Href: "/?range=" + z.Name, On: z == zoom})
	}
	colors := assignColors(servers, self)

	// Servers, with the figures each gave in its own answer (exact and
	// current) over the rounded copy gossip carries.
	own := map[string]api.Cameras{self: src.Cameras()}
	for _, pv := range peers {
		if pv.cameras != nil {
			own[pv.name] = *pv.cameras
		}
	}
	d.Total = len(servers)
	ifFails := map[string]string{}
	if fp, ok := src.(FailurePreviewer); ok {
		for _, f := range fp.IfFails() {
			ifFails[f.Server] = f.String()
		}
	}
	for _, s := range servers {
		if s.State == buddy.StateAlive {
			d.Alive++
		}
		if c, ok := own[s.Name]; ok && c.Load != nil {
			s.Load = *c.Load
		}
		row := serverRowOf(s, self, colors)
		row.Standby = own[s.Name].StandbySummary()
		row.IfFails = ifFails[s.Name]
		d.Servers = append(d.Servers, row)
	}

	// Cameras and spans from ourselves and every peer that answered.
	rows := map[string]*cameraRow{}
	spans := map[string][]api.Span{}
	addCams := func(c api.Cameras) {
		for _, ci := range c.Cameras {
			addCamera(rows, ci, colors)
		}
	}
	addSpans := func(m map[string][]api.Span) {
		for id, ss := range m {
			spans[id] = append(spans[id], ss...)
		}
	}
	addCams(own[self])
	if tl, err := src.Timeline(from, now); err != nil {
		h.log.Error("status page: local timeline", "err", err)
		d.Problems = append(d.Problems, "local recording index unreadable; timelines incomplete")
	} else {
		addSpans(tl)
	}
	for _, pv := range peers {
		if pv.cameras != nil {
			addCams(*pv.cameras)
		} else {
			d.Unknown = append(d.Unknown, unknownPeer{pv.name, "cameras unknown: " + pv.camErr.Error()})
		}
		if pv.timeline != nil {
			addSpans(pv.timeline.Cameras)
		} else if pv.cameras != nil {
			d.Unknown = append(d.Unknown, unknownPeer{pv.name, "footage unknown: " + pv.tlErr.Error()})
		}
	}
	answered := map[string]bool{self: true}
	for _, pv := range peers {
		answered[pv.name] = pv.cameras != nil
	}
	d.Unrecorded = addInventory(rows, servers, answered)
	for id := range spans {
		if rows[id] == nil {
			rows[id] = &cameraRow{ID: id, Home: camera.HomeOf(id), State: "not recorded", Class: "st-none", Error: "not in any server's configuration now", Codec: "—"}
		}
	}
	if as, ok := src.(ArchiveSource); ok {
		for id, us := range as.Unreachable() {
			if rows[id] == nil {
				rows[id] = &cameraRow{ID: id, Home: camera.HomeOf(id), State: "not recorded", Class: "st-none", Codec: "—"}
			}
			for _, u := range us {
				rows[id].Unreachable = append(rows[id].Unreachable, unreachableText(u, now))
			}
		}
	}
	// Backfill, as each home reports it in its cameras answer.
	for _, c := range own {
		for _, b := range c.Backfill {
			if rows[b.Camera] == nil {
				rows[b.Camera] = &cameraRow{ID: b.Camera, Home: camera.HomeOf(b.Camera), State: "not recorded", Class: "st-none"}
			}
			rows[b.Camera].Backfill = append(rows[b.Camera].Backfill, b.Text)
		}
	}
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		row := rows[id]
		row.Spans, row.Gaps, row.Covered = timelineOf(spans[id], from, now, colors, row.View)
		row.Spans = homeOnTop(row.Spans, camera.HomeOf(id))
		row.Disk, row.Oldest, row.FootageTitle = footageOf(id, own)
		d.Cameras = append(d.Cameras, *row)
	}

	// Legend: every server that appears on a timeline or in the site.
	seen := map[string]bool{}
	for _, s := range servers {
		seen[s.Name] = true
	}
	for _, ss := range spans {
		for _, s := range ss {
			seen[s.RecordedBy] = true
		}
	}
	for _, name := range sortedKeys(seen) {
		d.Legend = append(d.Legend, legendItem{name, colors.of(name)})
	}
	d.Ticks = ticks(from, now, time.Local)

	// Events of the whole site, newest first: ours and every peer's, each
	// acknowledged in the log it came from.
	type sourced struct {
		e      events.Event
		origin string
	}
	var all []sourced
	evs, err := src.Events(h.o.EventLimit)
	if err != nil {
		h.log.Error("status page: events", "err", err)
		d.EventErr = "event log unavailable"
	}
	for _, e := range evs {
		all = append(all, sourced{e, self})
	}
	for _, pv := range peers {
		if pv.events == nil && pv.evErr != nil {
			d.Unknown = append(d.Unknown, unknownPeer{pv.name, "events unknown: " + pv.evErr.Error()})
		}
		for _, e := range pv.events {
			all = append(all, sourced{e, pv.name})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].e.Time.After(all[j].e.Time) })
	if len(all) > h.o.EventLimit {
		all = all[:h.o.EventLimit]
	}
	for _, se := range all {
		row := eventRowOf(se.e)
		row.Origin = se.origin
		if row.NeedsAck {
			d.Unacked++
		}
		d.Events = append(d.Events, row)
	}

	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		h.log.Error("status page: render", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.Write(buf.Bytes())
}

// unreachableText is how the page says where unreachable footage is.
func unreachableText(u api.Unreachable, now time.Time) string {
	if u.Before == nil {
		return "footage on " + u.Server + ", unreachable (" + u.Reason + ")"
	}
	b := u.Before.In(now.Location())
	layout := "15:04:05"
	if b.Format("2006-01-02") != now.Format("2006-01-02") {
		layout = "2006-01-02 15:04:05"
	}
	return "before " + b.Format(layout) + " on " + u.Server + ", unreachable"
}

// colorMap gives each server its timeline colour, stable for a given site.
type colorMap map[string]string

func assignColors(servers []api.ServerInfo, self string) colorMap {
	names := map[string]bool{self: true}
	for _, s := range servers {
		names[s.Name] = true
	}
	m := colorMap{}
	for i, n := range sortedKeys(names) {
		m[n] = palette[i%len(palette)]
	}
	return m
}

func (m colorMap) of(name string) string {
	if c, ok := m[name]; ok {
		return c
	}
	// A recorder the site no longer lists: still a stable colour.
	var h uint32 = 2166136261
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	c := palette[h%uint32(len(palette))]
	m[name] = c
	return c
}

func serverRowOf(s api.ServerInfo, self string, colors colorMap) serverRow {
	row := serverRow{Name: s.Name, Address: s.Address, HTTP: s.HTTP, Self: s.Name == self, Color: colors.of(s.Name)}
	up := s.State.Up()
	switch s.State {
	case buddy.StateAlive:
		row.State, row.Class = "alive", "alive"
		if s.Maintenance {
			row.State, row.Class = "maintenance", "maintenance"
		}
	case buddy.StateSuspect:
		row.State, row.Class = "SUSPECT", "suspect"
	case buddy.StateLeft:
		row.State, row.Class = "left", "left"
	case buddy.StateDead:
		row.State, row.Class = "DEAD", "dead"
	default:
		row.State, row.Class = strings.ToUpper(string(s.State)), "dead"
		if s.State == "" {
			row.State = "UNKNOWN"
		}
	}
	switch {
	case !up:
		row.Records = "nothing"
	case len(s.AdoptedFrom) > 0:
		row.Records = "own + adopted from " + strings.Join(s.AdoptedFrom, ", ")
	default:
		row.Records = "own"
	}
	dash := "—"
	if !up {
		row.CamsText, row.ViewersText, row.CPU, row.Memory, row.Storage, row.Recordings = dash, dash, dash, dash, dash, dash
		return row
	}
	row.CamsText = fmt.Sprintf("%d / %s", s.Cameras, limit(s.Capacity.Cameras))
	row.ViewersText = fmt.Sprintf("%d / %s", s.Load.Viewers, limit(s.Capacity.Viewers))
	row.CPU = fmt.Sprintf("%.0f %%", s.Load.CPU*100)
	row.Memory = humanBytes(s.Load.MemoryBytes)
	if s.Load.DiskTotal > 0 {
		pct := float64(s.Load.DiskUsed) / float64(s.Load.DiskTotal) * 100
		row.Storage = fmt.Sprintf("%s / %s", humanBytes(s.Load.DiskUsed), humanBytes(s.Load.DiskTotal))
		row.StorPct = fmt.Sprintf("%.0f", min(pct, 100))
	} else {
		row.Storage = dash
	}
	if s.Load.RecordingBytes > 0 {
		row.Recordings = humanBytes(s.Load.RecordingBytes)
	} else {
		row.Recordings = dash
	}
	return row
}

// footageOf sums what the answering servers keep of camera id: the disk it
// takes and the oldest footage, with a per-server breakdown for the title.
func footageOf(id string, own map[string]api.Cameras) (disk, oldest, title string) {
	var total uint64
	var first time.Time
	var parts []string
	for _, name := range sortedKeys(own) {
		f, ok := own[name].Footage[id]
		if !ok {
			continue
		}
		total += f.Bytes
		if first.IsZero() || f.Oldest.Before(first) {
			first = f.Oldest
		}
		parts = append(parts, fmt.Sprintf("%s keeps %s since %s", name, humanBytes(f.Bytes), f.Oldest.Local().Format("Jan 2 15:04")))
	}
	if len(parts) == 0 {
		return "—", "—", "no footage on the servers that answered"
	}
	return humanBytes(total), first.Local().Format("Jan 2 15:04"), strings.Join(parts, "; ")
}

func addCamera(rows map[string]*cameraRow, ci api.CameraInfo, colors colorMap) {
	row := rows[ci.ID]
	ref := recorderRef{Name: ci.RecordedBy, Color: colors.of(ci.RecordedBy), Adopted: ci.RecordedBy != ci.Home}
	if row != nil && row.State != "not recorded" {
		// Recorded twice (views disagree during a partition): list both,
		// keep the state of the one that is recording.
		row.RecordedBy = append(row.RecordedBy, ref)
		if row.State == recorder.StateRecording || ci.State != recorder.StateRecording {
			return
		}
	} else {
		row = &cameraRow{ID: ci.ID, RecordedBy: []recorderRef{ref}, View: viewURL(ci.ID)}
		rows[ci.ID] = row
	}
	row.Home = ci.Home
	if row.Home == "" {
		row.Home = camera.HomeOf(ci.ID)
	}
	row.State = ci.State
	row.Class = "st-" + ci.State
	if !ci.Since.IsZero() {
		row.Since = ci.Since.Local().Format("15:04:05")
	}
	row.Error = events.Scrub(ci.Error)
	row.NextAttempt = ""
	if !ci.NextAttempt.IsZero() {
		row.NextAttempt = "next attempt " + ci.NextAttempt.Local().Format("15:04:05") + ", sooner if the camera answers (probed every second)"
	}
	row.Critical = ci.Critical
	row.Codec, row.CodecClass = codecText(ci.Codec)
	row.Bitrate = fmt.Sprintf("%.2f Mb/s", ci.BitrateBps/1e6)
	if ci.LastKeyframe.IsZero() {
		row.LastKeyframe = "never"
	} else {
		row.LastKeyframe = ci.LastKeyframe.Local().Format("15:04:05")
	}
}

// addInventory adds a row for every camera of the site's inventories that
// no answering server reported recording: the cameras nobody can record
// (in red, with the planner's reason), and those whose planned recorder
// did not answer or has not started them yet. Inventories come from the
// replicated records, so cameras of dead servers are listed too. It
// returns how many cameras nobody can record.
func addInventory(rows map[string]*cameraRow, servers []api.ServerInfo, answered map[string]bool) int {
	unrecorded := 0
	for _, s := range servers {
		for _, hc := range s.Inventory {
			row := rows[hc.ID]
			if row != nil {
				row.Critical = row.Critical || hc.Critical
				continue
			}
			row = &cameraRow{ID: hc.ID, Home: s.Name, Critical: hc.Critical, Bitrate: "—", LastKeyframe: "—", Codec: "—", View: viewURL(hc.ID)}
			rows[hc.ID] = row
			switch {
			case hc.Unrecorded != "":
				unrecorded++
				row.State, row.Class, row.Error = "not recorded", "st-unrecorded", unrecordedText(hc.Unrecorded)
				row.Nobody = "nobody"
			case hc.PlannedOn != "" && !answered[hc.PlannedOn]:
				row.State, row.Class = "unknown", "st-none"
				row.Error = fmt.Sprintf("planned on %s, which did not answer", hc.PlannedOn)
			case hc.PlannedOn != "":
				row.State, row.Class = "starting", "st-connecting"
				row.Error = fmt.Sprintf("planned on %s, which has not started it yet", hc.PlannedOn)
			default:
				row.State, row.Class = "unknown", "st-none"
				row.Error = "not planned yet: the site view is settling"
			}
		}
	}
	return unrecorded
}

// codecText is the recorder's codec name as a technician reads it
// ("H264+AAC" → "H.264 + AAC"), and a class marking H.265, which not every
// browser decodes; "—" while the recorder has not connected to the camera.
func codecText(codec string) (text, class string) {
	if codec == "" {
		return "—", ""
	}
	parts := strings.Split(codec, "+")
	for i, p := range parts {
		switch strings.ToUpper(p) {
		case "H264":
			parts[i] = "H.264"
		case "H265":
			parts[i], class = "H.265", "codec-h265"
		}
	}
	return strings.Join(parts, " + "), class
}

// unrecordedText is what a technician reads for the planner's reason.
func unrecordedText(reason string) string {
	switch reason {
	case api.UnrecordedCapacity:
		return "not recorded — no live buddy with capacity"
	case api.UnrecordedNoCandidate:
		return "not recorded — its server and every buddy that may take it are down"
	case api.UnrecordedInvalid:
		return "not recorded — the servers' configurations disagree about this camera (duplicate name?)"
	}
	return "not recorded — " + reason
}

func eventRowOf(e events.Event) eventRow {
	row := eventRow{
		ID: e.ID, Time: e.Time.Local().Format("Jan 2 15:04:05"), Severity: string(e.Severity), Type: string(e.Type),
		Server: e.Server, Cameras: strings.Join(e.Cameras, ", "), Text: events.Scrub(e.Text),
		Class: "sev-" + string(e.Severity),
	}
	if !e.ResolvedAt.IsZero() {
		row.ResolvedAt = e.ResolvedAt.Local().Format("Jan 2 15:04:05")
	}
	if e.Acked {
		row.AckedBy = e.AckedBy
		row.AckedAt = e.AckedAt.Local().Format("Jan 2 15:04:05")
	} else if e.Severity == events.SeverityAlarm {
		// A resolved alarm still waits for an acknowledgement, but is no
		// longer shown as a live condition.
		row.NeedsAck = true
		if row.ResolvedAt != "" {
			row.Class += " unacked resolved"
		} else {
			row.Class += " unacked"
		}
	}
	return row
}

func limit(n int) string {
	if n <= 0 {
		return "∞"
	}
	return fmt.Sprint(n)
}

func humanBytes(b uint64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "kMGTPE"[exp])
}

func fmtDur(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return d.String()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
