package storage

import (
	"log/slog"
	"os"
	"time"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultSegment           = 60 * time.Second
	DefaultPart              = time.Second
	DefaultRetentionInterval = 10 * time.Second
)

// Alarm kinds raised through Options.OnAlarm and kept by Store.Health.
const (
	AlarmDiskFull   = "disk_full"   // a write failed with ENOSPC/EDQUOT
	AlarmWriteError = "write_error" // any other failed segment or index write
	AlarmDiskLow    = "disk_low"    // retention could not reach the free-space floor
	AlarmRecovered  = "recovered"   // writes succeed again after a failure
	AlarmRecovery   = "recovery"    // crash recovery repaired something at Open; see Alarm.Lost
)

// Options configures a Store. Only Dir is required.
type Options struct {
	// Dir is the data directory; it holds index.db and one folder per
	// home server.
	Dir string
	// Server is this server's name; it is recorded as recorded_by of every
	// segment and is part of each file name.
	Server string
	// Segment is the target segment length; segments are cut at the first
	// video keyframe after it (default 60s).
	Segment time.Duration
	// Part is the fragment length: the most footage a crash may lose
	// (default 1s).
	Part time.Duration
	// Retention deletes closed segments whose end is older than this
	// (0 keeps footage until space runs low).
	Retention time.Duration
	// MinFreeFraction (0..1) and MinFreeBytes are free-space floors on the
	// file system of Dir; retention deletes the oldest footage while free
	// space is below either.
	MinFreeFraction float64
	MinFreeBytes    int64
	// RetentionInterval is how often Run enforces retention (default 10s).
	RetentionInterval time.Duration
	// StatFS reports free and total bytes of the file system holding dir.
	// nil means statfs(2); tests inject their own.
	StatFS func(dir string) (free, total uint64, err error)
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// OnAlarm is called synchronously (keep it fast) whenever an alarm is
	// raised; nil ignores alarms, Health still reports them.
	OnAlarm func(Alarm)
	// SyncInterval is how often written footage is made durable (one
	// fdatasync per file written since the last round, then one index
	// commit for all cameras); default Part. A power cut loses at most
	// one part plus this.
	SyncInterval time.Duration
	// SyncParallelism is how many segment files a sync round syncs at
	// once; default DefaultSyncParallelism. A worker process sets it to
	// at least its cameras, so that a round's fdatasync calls all start
	// together (see worker.RunWorker).
	SyncParallelism int
	// SyncMethod is how a sync round hands its files to fdatasync
	// ([storage] sync_method); the zero value is SyncAuto.
	SyncMethod SyncMethod
	// openRing opens a sync round's io_uring ring; nil is uring.New.
	// Tests stand in a kernel that refuses it.
	openRing func(entries int) (fileSyncer, error)
	// FS is the file layer segment files are written through; nil means
	// the operating system's. Tests inject faults through it.
	FS FS
	// ObservePartWrite, when set, receives how long each fragment write to
	// the segment file took (for the segment write latency metric). It is
	// called on the camera's writer goroutine and must not block.
	ObservePartWrite func(time.Duration)
	// Commit, when set, makes this a store without an index: a worker
	// process that writes segment files while another process owns
	// index.db. Each sync round's index updates, for data already made
	// durable, go to Commit instead of a bbolt transaction; an error
	// keeps them for the next round. See IndexUpdate and Store.Apply.
	Commit func([]IndexUpdate) error
	// SkipRecovery, when set, names cameras whose files Open's recovery
	// leaves alone: live worker processes still write them (a supervisor
	// restarted while they recorded). RecoverCameras repairs them later.
	SkipRecovery func(camera string) bool
	// OnCut, when set, is called when retention found only open segments
	// to delete and asked this store's Writers to cut theirs: the index
	// owner passes the request on to the workers that write the other
	// open segments (their stores' CutSegments). It must not block.
	OnCut func()
	// NeedSpace, in a store without an index (Commit set), asks the
	// index owner to run retention now: a write met a full disk, and only
	// the owner can delete. The Writer then waits up to SpaceWait for
	// free space to grow and writes the rest. It must not block.
	NeedSpace func()
	// SpaceWait bounds that wait (default 1 s); the writer queue absorbs
	// the samples that arrive meanwhile.
	SpaceWait time.Duration

	// openIndexFile opens index.db in place of os.OpenFile (tests break
	// the file under bbolt through it).
	openIndexFile func(string, int, os.FileMode) (*os.File, error)
}

// Alarm is a storage condition an operator should see.
type Alarm struct {
	Kind   string `json:"kind"`
	Camera string `json:"camera,omitempty"`
	Err    string `json:"error,omitempty"`
	// Lost is set on an AlarmRecovery that cut footage: a torn fragment
	// was truncated or an indexed segment's file was missing. Recovery
	// after every kill -9 closes open segments; only Lost needs an
	// operator, the rest is routine.
	Lost bool      `json:"lost,omitempty"`
	Time time.Time `json:"time"`
}

func (o *Options) setDefaults() {
	if o.Segment <= 0 {
		o.Segment = DefaultSegment
	}
	if o.Part <= 0 {
		o.Part = DefaultPart
	}
	if o.Part > o.Segment {
		o.Part = o.Segment
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = o.Part
	}
	if o.SyncParallelism <= 0 {
		o.SyncParallelism = DefaultSyncParallelism
	}
	if o.SyncMethod == "" {
		o.SyncMethod = SyncAuto
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = DefaultRetentionInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SpaceWait <= 0 {
		o.SpaceWait = time.Second
	}
	if o.StatFS == nil {
		o.StatFS = statFS
	}
}

// SyncMethod is how a sync round makes its segment files durable. Each
// file is durable only once fdatasync answered success for it, whichever
// the method: they differ in who waits for the disk.
type SyncMethod string

const (
	// SyncAuto submits a round's files to the kernel in one io_uring
	// submission that does not block (see internal/uring), and calls
	// fdatasync itself, one goroutine per file, where the kernel refuses
	// io_uring (before 5.6, kernel.io_uring_disabled, a seccomp profile).
	// The zero value is SyncAuto.
	SyncAuto SyncMethod = "auto"
	// SyncIOURing is SyncAuto that refuses to open where the kernel
	// refuses io_uring: for a site that measured its CPU with it.
	SyncIOURing SyncMethod = "io_uring"
	// SyncFdatasync never uses io_uring: for a kernel whose io_uring
	// misbehaves, or a policy that forbids it.
	SyncFdatasync SyncMethod = "fdatasync"
)
