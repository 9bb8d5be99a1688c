// Package worker records cameras in supervised worker processes of the
// same binary, so that one camera's fatal crash, deadlock or runaway
// memory costs that camera's worker and not the server.
//
// # Processes
//
// The server (`buddyrec run`, the supervisor) runs a Pool; each worker is
// `buddyrec worker -id N -socket data_dir/workers/wN.sock -server NAME
// -data-dir DIR -segment D -part D` (its settings from the supervisor,
// never from the config file, which may have been edited since),
// started in its own session (setsid) with its output going to wN.log, so
// that it outlives a kill -9 of the supervisor and never gets SIGPIPE. A
// worker pulls RTSP, writes and fdatasyncs segment files (a storage.Store
// opened with Options.Commit) and serves the supervisor over its socket
// (see Serve): /hello, /status (the heartbeat), PUT /cameras, /index (its
// index updates, a long poll), the relay frame stream for live viewers,
// POST /cut and POST /stop.
//
// # Invariants
//
//   - The supervisor is the only writer of index.db. A worker's index
//     updates describe data it already made durable; they wait in its
//     Queue until the supervisor applies them, and asking for the updates
//     after sequence n acknowledges everything up to n.
//   - The files are the truth. When a worker dies, the supervisor indexes
//     what its files hold (storage.Store.RecoverCameras) before another
//     worker writes those cameras; a supervisor that restarts leaves the
//     cameras of live workers out of its start-up recovery and takes the
//     workers over.
//   - Make before break: a worker replaced while it works (over
//     worker_memory, another binary), and a camera regrouped after a
//     crash loop, record until the new worker's durable footage overlaps
//     theirs (control.Covered, the rule of every move).
//   - A worker's failure costs only its cameras: nothing in the Pool waits
//     on one worker while serving another, and a viewer's stream is a
//     bounded queue that loses frames rather than holding a worker up.
//   - A worker that hears from no supervisor for the orphan timeout (10
//     min) stops, so a server taken out of service does not record on.
//
// # Cost
//
// What a worker costs beyond the recording it does is wake-ups: each
// process has its own netpoller thread, sysmon thread and scheduler, and a
// wake-up in one process never serves another's cameras, so the same
// cameras split over more processes are woken more often (bench record
// -profile counts them: context switches, read system calls, garbage
// collections per process). Hence a worker is built to wake once per tick
// of its read grid (40 ms) and to do everything then:
//   - it runs one P (GOMAXPROCS=1: idle Ps spinning for work cost more
//     than they carry);
//   - a flowing camera stream is polled at every tick with raw reads,
//     never waited for, and its socket's SO_RCVLOWAT keeps packets from
//     waking the process in between (recorder/batchread.go);
//   - the per-camera watch and the storage sync rounds run on the same
//     wall-clock grid (internal/wallgrid), so their timers fire in the
//     ticks' wake-ups;
//   - its sysmon thread is kept out of deep sleep (sysmonPacing, a GODEBUG
//     setting in its environment): otherwise every wake-up of the idle
//     process restarts sysmon polling at 20 µs;
//   - a fragment is one writev.
//
// Anything that adds periodic work to every worker (a ticker, a poll) is
// paid once per worker: the heartbeat (500 ms), the index long poll and
// the orphan check (1 s) are all there is. The supervisor's regroup check
// (a quarter of RegroupAfter) runs once per pool, not per worker.
package worker
