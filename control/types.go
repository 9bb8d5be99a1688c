package control

import (
	"time"

	"github.com/buddyrec/buddyrec/failover"
)

// Pipeline states, with the values recorder.State uses (control cannot
// import recorder: it pulls in gortsplib and the network; node/ checks the
// two agree).
const (
	PipelineConnecting = "connecting"
	PipelineRecording  = "recording"
	PipelineOffline    = "offline"
)

// Failure says why an offline pipeline is offline, which decides the alarm
// a technician and the PSIM get.
type Failure int

const (
	// FailureOther is any failure without a more specific alarm: the camera
	// refuses or drops the connection, the network is down.
	FailureOther Failure = iota
	// FailureAuth: the camera refused the credentials.
	FailureAuth
	// FailureStalled: the session was up but the media stopped (a timeout).
	FailureStalled
)

// Defaults for the durations in Config left zero.
const (
	// DefaultHandoffTimeout bounds make-before-break: a camera moving away
	// keeps recording here until its new owner reports recording it, or
	// this long has passed.
	DefaultHandoffTimeout = 20 * time.Second
	// DefaultHandoffOverlap is the footage recorded twice on a handover
	// beyond the bare minimum: it absorbs the difference between two
	// servers' clocks (NTP keeps them milliseconds apart), which compare
	// as the old recorder's last written time and the new one's first.
	DefaultHandoffOverlap = 500 * time.Millisecond
	// DefaultAdoptionReport bounds how long a takeover notice waits for
	// every adopted camera to record; after it the notice names the
	// cameras that record, and the others get notices as they start.
	DefaultAdoptionReport = 15 * time.Second
	// MinServerUpHoldDown is the shortest hold-down between a server
	// coming back and the server.up notice that ends its episode.
	MinServerUpHoldDown = 10 * time.Second
	// CredentialsGrace is how long adopted cameras may lack the
	// credentials their home replicates before the alarm: a short wait
	// for gossip is normal.
	CredentialsGrace = 5 * time.Second
)

// Inputs is everything one step decides from. node/ gathers it; nothing in
// it is read again behind Step's back.
type Inputs struct {
	// Now is the time of this step. Step reads no clock.
	Now time.Time
	// Config is what Step needs of this server's configuration.
	Config Config
	// Clustered is false for a standalone server (no gossip): it does not
	// settle and publishes nothing.
	Clustered bool
	// Members is the membership view: every member this server knows, with
	// its state. Self may be included; it is always alive to itself.
	Members []Member
	// Records are peers' records as last decoded, by server name,
	// including dead servers'. Self's entry, if any, is ignored: Step uses
	// Config.Self. A record that did not decode is left out.
	Records map[string]Record
	// Pipelines are the statuses of this server's recording pipelines.
	Pipelines []Pipeline
	// Credentials holds the camera ids this server can reach: its own
	// cameras, and the cameras whose home replicated their secrets here.
	Credentials map[string]bool
	// DeclaredDeadAt is when this server last learnt that peers had
	// declared it dead while it ran (it refuted the death); zero if never.
	DeclaredDeadAt time.Time
	// Standbys are the statuses of this server's standby sessions (hot
	// and mirror; see standby.go), apart from Pipelines.
	Standbys []Pipeline
	// Footage is, per camera this server has a pipeline for, the durable
	// (indexed) footage of the pipeline's current run: what
	// make-before-break compares (see handover.go).
	Footage map[string]Footage
	// Stopping: this server drains because it is stopping (a clean stop
	// or a restart), not for maintenance; only the wording differs.
	Stopping bool
}

// Config is the part of this server's configuration the rules read.
type Config struct {
	// Self is this server's public record: name, capacity, buddies, mode,
	// failback, cameras, aspects, timing. Its Claims, Recording and Stable
	// are ignored: Step fills them.
	Self Record
	// FailoverAfter is the silence after which buddies declare a server
	// dead; it is also how long a server settles after a start or a hang.
	FailoverAfter time.Duration
	// FailbackAfter is how long a server must be healthy before its
	// cameras come back (Stable in its record).
	FailbackAfter time.Duration
	// HandoffTimeout, AdoptionReport and ServerUpHoldDown default to
	// DefaultHandoffTimeout, DefaultAdoptionReport and
	// max(FailbackAfter, MinServerUpHoldDown) when zero.
	HandoffTimeout time.Duration
	AdoptionReport time.Duration
	// HandoffOverlap is how far this server's durable footage must reach
	// past the new owner's first durable frame before it stops a camera
	// it hands over (DefaultHandoffOverlap when zero).
	HandoffOverlap   time.Duration
	ServerUpHoldDown time.Duration
}

func (c Config) handoffTimeout() time.Duration {
	if c.HandoffTimeout > 0 {
		return c.HandoffTimeout
	}
	return DefaultHandoffTimeout
}

func (c Config) adoptionReport() time.Duration {
	if c.AdoptionReport > 0 {
		return c.AdoptionReport
	}
	return DefaultAdoptionReport
}

func (c Config) holdDown() time.Duration {
	if c.ServerUpHoldDown > 0 {
		return c.ServerUpHoldDown
	}
	return max(c.FailbackAfter, MinServerUpHoldDown)
}

// Member is one server in the membership view.
type Member struct {
	Name string
	// Up is the membership verdict (buddy.State.Up: alive or suspect). A
	// member that is not up has lost its cameras to its buddies.
	Up bool
	// Since is when this server saw the state begin; zero when unknown.
	Since time.Time
	// Left: the member announced that it leaves (a clean stop), rather
	// than falling silent. It is not up either way.
	Left bool
}

// Record is a server's replicated record as the rules read it: its public
// inventory and policy (what the planner needs) and what it says it does.
type Record struct {
	Name string
	// Version is the record's gossip version. A server seen coming back
	// still carries the record it had before it died; Step distrusts that
	// version until a newer one arrives.
	Version  uint64
	Capacity failover.Capacity
	Buddies  []string
	Mode     string
	Failback bool
	Cameras  []failover.Camera
	Aspects  []Aspect
	// Claims are the camera ids the server's plan gives it.
	Claims []string
	// Recording are the camera ids with a pipeline on the server.
	Recording []string
	// Durable maps the cameras the server records to the time of the
	// first durable frame of its current run: what make-before-break
	// waits for (see handover.go).
	Durable map[string]time.Time
	// Stable: up for failback_after, its cameras may come home.
	Stable bool
	// Timing is "keepalive/failover_after": it must agree across the site.
	Timing string
	// Standby is the standby mode the server asks for its critical
	// cameras: StandbyHot, StandbyMirror, or "" / StandbyCold.
	Standby string
	// Standbys are the camera ids the server holds a standby session for.
	Standbys []string
	// Live are the camera ids the server's pipelines record now (keyframes
	// reach storage). A buddy opens a standby session only for a camera
	// its home records, so the home's own session always comes first.
	Live []string
	// Maintenance: the server is draining (see drain.go): the planner
	// hands its cameras to others and gives it none.
	Maintenance bool
	// Reclaim: the server left maintenance and takes its cameras back as
	// if Failback were set, until they record here again.
	Reclaim bool
}

// Aspect is a non-camera thing that fails over with its server (an I/O
// unit, an LPR feed...): it follows the home's first alive buddy.
type Aspect struct {
	Kind, Name string
}

// Pipeline is one recording pipeline's status.
type Pipeline struct {
	ID    string
	State string // PipelineConnecting, PipelineRecording or PipelineOffline
	// Failure classifies an offline pipeline's failure.
	Failure Failure
	// Error is the last failure, credentials removed.
	Error string
}

// State is the control loop's memory between steps. The zero value is a
// server that just started. Step never modifies the maps of the State it
// is given, so a caller may keep and share old States.
type State struct {
	// Alive is the membership verdict of the last step, self included.
	Alive map[string]bool
	// Records are the records the last plan used, self's included, with
	// stale claims removed.
	Records map[string]Record
	// Plan is the last plan.
	Plan failover.Plan
	// Assigned are the cameras the plan gives this server (its claims).
	Assigned map[string]bool
	// Releasing are cameras the plan moved away that this server keeps
	// recording until their new owner records them, with the deadline.
	Releasing map[string]time.Time
	// Recording are the cameras given to the recorder (Actions.Cameras).
	Recording map[string]bool
	// Unplaced maps the cameras nobody can record to the planner's reason.
	Unplaced map[string]string
	// Drain is where this server's maintenance stands; nil when it is not
	// in maintenance.
	Drain *DrainStatus

	healthySince time.Time // since when this server counts as healthy
	// publishedStable is the Stable this server last published.
	publishedStable bool
	lastRound       time.Time
	settleUntil     time.Time
	stale           map[string]uint64 // server -> record version it had when seen coming back
	cameras         map[string]string // camera id -> pipeline state last step
	pending         map[string]takeover
	announced       map[string]bool // adopted cameras named in a failover.completed notice
	episodes        map[string]episode
	capacity        map[string][]string // open capacity alarm condition -> its cameras
	findings        string              // last config.mismatch reported
	missing         string              // adopted cameras lacking credentials, joined
	missingSince    time.Time
	missingTold     bool
	// Standby are the standby sessions this server holds, by camera id.
	Standby      map[string]Standby
	unavailable  map[string]bool      // standby cameras with a standby.unavailable alarm open
	homeWait     map[string]time.Time // standby sessions kept while the home does not record: since when
	placement    placementCache       // the last StandbyPlacement
	draining     bool                 // Config.Self.Maintenance as of the last step
	reclaimUntil time.Time            // after an undrain: publish Reclaim until then
}

// takeover is one adoption (or failback) waiting to be reported.
type takeover struct {
	home    string   // failed server; "" for a failback
	cameras []string // not yet reported, sorted
	started time.Time
	told    bool // reported once, or the report time passed: report each camera as it starts
	noticed bool // a notice went out (it carried the aspects)
	// planned: the home is alive and in maintenance; its own
	// server.maintenance notice tells the PSIM where the cameras went.
	planned bool
}

// episode is one down-then-up episode of a peer: one server.down notice at
// its start, one server.up notice once the server stayed up for the
// hold-down. Flaps inside it are logged, not notified.
type episode struct {
	down    time.Time // start
	upSince time.Time // zero while down
	flaps   int       // downs after the first
	told    bool      // its server.down was notified (by whichever announcer)
}

// failbackKey keys a failback among the pending takeovers (keyed by home
// name otherwise; no server is called this).
const failbackKey = "/failback"

// Actions are what node/ carries out after a step, in this order: logs,
// the record, the cameras, events, notices.
type Actions struct {
	// Publish is this server's record as of this step; nil when standalone.
	Publish *Publish
	// Cameras are every camera to record now, sorted: those the plan
	// assigns and those still handed over (Releasing). Cameras lacking
	// credentials are left out.
	Cameras []string
	// Releasing maps the cameras of Cameras that are only kept until their
	// new owner records them to that owner: make-before-break pairs.
	Releasing map[string]string
	// Settling is true while this server changes nothing after a start or
	// a hang: Cameras is then what it recorded before.
	Settling bool
	// Standby are the standby sessions to hold now (none of Cameras),
	// sorted by camera id.
	Standby []Standby
	Events  []Event
	Notices []Notice
	Logs    []Log
}

// Publish is what changes in this server's record each step.
type Publish struct {
	Claims    []string
	Recording []string
	// Durable is Record.Durable: the first durable frame of each camera
	// recorded here whose current run has written footage.
	Durable map[string]time.Time
	Stable  bool
	// Standbys and Live are Record.Standbys and Record.Live.
	Standbys []string
	Live     []string
	// Reclaim is Record.Reclaim: this server left maintenance and takes
	// its cameras back.
	Reclaim bool
}

// Event is an entry for the event log.
type Event struct {
	Type     string
	Severity string
	Cameras  []string
	Text     string
	// About names the server the event is about (the failed server of a
	// takeover, the server that went down), "" for this server.
	About string
	// Condition, on an alarm, names the condition it reports, so a later
	// event can resolve it.
	Condition string
	// Resolves lists the conditions this event clears.
	Resolves []string
}

// Notice is a PSIM notice.
type Notice struct {
	Type         string
	FailedServer string
	Cameras      []string
	Aspects      []Aspect
	Text         string
	// Serving: the cameras are recorded by this server now; the notice
	// carries its address and each camera's live URL.
	Serving bool
	// Moved maps cameras to the server that records them now, for a
	// notice naming cameras recorded elsewhere (server.maintenance): the
	// notice carries that server's address per camera.
	Moved map[string]string
}

// Log is a line for the operational log (warnings about this server).
type Log struct {
	Msg  string
	Args []any
}

// Event and notice types the rules raise.
const (
	TypeServerDown        = "server.down"
	TypeServerUp          = "server.up"
	TypeFailoverStarted   = "failover.started"
	TypeFailoverCompleted = "failover.completed"
	TypeFailoverReleased  = "failover.released"
	TypeFailbackCompleted = "failback.completed"
	TypeCapacityExceeded  = "capacity.exceeded"
	TypeCapacityRestored  = "capacity.restored"
	TypeCameraOffline     = "camera.offline"
	TypeCameraOnline      = "camera.online"
	TypeCameraAuthFailed  = "camera.auth_failed"
	TypeRecordingStalled  = "recording.stalled"
	TypeConfigMismatch    = "config.mismatch"
	TypeNoCredentials     = "failover.no_credentials"
	TypeAlarmResolved     = "alarm.resolved"
	// TypeServerMaintenance: a server entered maintenance (event) and,
	// once its cameras are handed over, where each is recorded now
	// (event and notice).
	TypeServerMaintenance = "server.maintenance"
	// TypeServerMaintenanceEnded: a server left maintenance; its cameras
	// come back (failback.completed names them once they record).
	TypeServerMaintenanceEnded = "server.maintenance_ended"
	// TypeServerStopped: a server stopped cleanly (it left the cluster):
	// no alarm, unlike server.down.
	TypeServerStopped = "server.stopped"
)

// Severities.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityAlarm   = "alarm"
)

// ConditionServerDown is the condition of a server's down episode.
func ConditionServerDown(server string) string { return "server.down/" + server }

// ConditionCamera is the condition of a camera's offline alarm.
func ConditionCamera(id string) string { return "camera/" + id }
