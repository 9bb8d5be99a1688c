// Package control holds the control loop's rules as a pure step: from the
// loop's previous [State] and what this server sees now ([Inputs]: the
// membership view, peers' records, its own configuration, its pipelines,
// the credentials it holds, the time), [Step] returns the next State and
// the [Actions] node/ carries out: the cameras to record, the record to
// publish, events to log, notices to send, lines to log.
//
// Step does no I/O, reads no clock, starts no goroutine and uses no
// randomness; equal arguments give equal results, and it never modifies
// the State it is given. The planner ([failover.Compute]) decides where
// cameras go; this package decides when this server may act on the plan,
// how a camera changes hands, and who tells whom.
//
// # Settling
//
// After a start, and after a recovery, a clustered server settles for
// failover_after: it claims nothing, starts and stops nothing, announces
// nothing, and publishes a record with no claims. Its view of who records
// what may be stale (peers adopted its cameras while it was away); waiting
// lets fresh records arrive, so a stale claim never wins cameras back. It
// still watches the membership and the records while it settles, so what
// it compares against afterwards is recent.
//
// A recovery is either a pause (two steps further apart than half of
// failover_after: SIGSTOP, a paused VM, a stalled disk) or learning that
// peers declared this server dead while it ran (Inputs.DeclaredDeadAt
// after the start of its health). Either way its buddies have adopted, or
// are about to adopt, its cameras: it drops its claims and counts its
// health from now, so its cameras come back only after failback_after.
// A standalone server never settles.
//
// # Trust of claims
//
// Claims (Record.Claims) keep cameras where they are. A server seen coming
// back from the dead still carries the record it had before it died; its
// claims, recording list and stability are from then. Until it publishes a
// newer version, Step treats its record as claiming nothing, recording
// nothing and not stable. This server's own Stable counts from the step
// after it published it, as peers see it.
//
// # Make before break
//
// A camera the plan moves away from this server (failback, a claim lost to
// a higher-priority claimant, a drain) keeps recording here until its new
// owner's durable footage overlaps this server's, or until the handoff
// timeout (default 20 s) passes: [Actions.Releasing] names these pairs.
// One rule decides it for every move ([handedOver]):
//
//   - Each server publishes, per camera it records, the time of the first
//     durable (indexed) frame of the pipeline's current run
//     (Record.Durable, from Inputs.Footage). A pipeline that exists but
//     has not yet connected, met a keyframe and written its first part
//     publishes nothing for the camera: a pipeline is not footage.
//   - The old recorder stops only once the end of its own durable footage
//     (Inputs.Footage[id].To) is at least HandoffOverlap (default 0.5 s,
//     for clock differences between servers) past the new owner's first
//     durable frame. The footage recorded twice is what export and the
//     timeline de-duplicate at a keyframe; what the old recorder writes
//     while it stops only lengthens the overlap.
//   - A camera whose pipeline here records nothing (offline, connecting)
//     has nothing to overlap: it stops as soon as the new owner's footage
//     is durable.
//   - Past the handoff timeout a camera still stays here while the new
//     owner runs a pipeline for it but has written nothing durable and
//     this server records it ([ownerStuck]): the owner cannot reach the
//     camera (or lacks its credentials), and stopping would leave it
//     recorded by nobody. A drain counts such a camera as kept.
//
// A camera the plan gives nobody (displaced by a critical camera when
// capacity is short) has no new owner to wait for and stops at once.
//
// # One announcer per event
//
// Every event about the site is announced by one server, chosen from the
// shared view, so that once views agree exactly one server announces it.
// Every server keeps the bookkeeping of every rule (down episodes,
// cameras nobody records), so whichever server is the announcer when a
// condition clears knows it was raised.
//
//   - server.down and server.up of X: X's first alive buddy, else the
//     lowest-named alive server other than X ([State.Announcer]).
//   - capacity.exceeded, capacity.restored and config.mismatch: the
//     lowest-named alive server ([State.SiteAnnouncer]).
//   - failover.started, failover.completed, failover.released: the server
//     that adopts (or gives up) the cameras. failback.completed: the home.
//   - camera.offline, camera.auth_failed, recording.stalled, camera.online:
//     the server that records the camera.
//
// Stable servers (up for failback_after, as their record says) are chosen
// first: a server that just started or recovered has no memory of what
// was announced before (it forgets its down episodes on a recovery), and
// takes over announcing only once it has watched the site for a while.
//
// # Notices that stay true
//
// failover.completed names only the cameras this server records when it is
// sent: once every adopted camera records, or after the report time
// (default 15 s) the ones that record, then each other camera when it
// starts. A camera given up before it recorded is never named. An adopted
// camera that was named and is given up later (displaced, moved to
// another buddy) gets its own failover.released notice, unless it went
// home (the home's failback.completed says so). failback.completed works
// the same way for cameras coming home.
//
// # Flap damping
//
// A server that goes down opens an episode: one server.down notice (and an
// alarm) at its start. Downs and returns inside the episode are logged
// (server.down as a warning, server.up as info) but not notified. Once the
// server has stayed up for the hold-down (max(failback_after, 10 s)), the
// episode ends with one server.up notice and an alarm.resolved event. So a
// lossy network gives the PSIM one down and one up per episode, while the
// log keeps every flap. A server declared dead while it ran settles as
// after a pause (above), so a flapping server does not pull its cameras
// back and forth either.
//
// # Alarms raised and cleared
//
// Every alarm that can clear carries a condition (Event.Condition); the
// event that clears it lists it in Event.Resolves, and the event log marks
// the alarm resolved, keeping it (and its acknowledgement) in the history.
//
//   - camera.offline, camera.auth_failed, recording.stalled
//     ([ConditionCamera]) → camera.online, event and notice.
//   - server.down ([ConditionServerDown]) → alarm.resolved and the
//     server.up notice at the end of the episode.
//   - capacity.exceeded (the cameras it named) → capacity.restored, event
//     and notice, once every camera it named is recorded again.
//   - failover.no_credentials and config.mismatch do not clear by
//     themselves: they name configuration errors.
//
// # Guarantees
//
// The table tests check each rule above. The property test simulates
// sites of two to four servers, each running Step over its own view,
// lagging up to two steps, through random crashes, restarts, hangs and
// false deaths, and checks:
//
//   - While a camera's home is down, no step stops a camera that no other
//     server records, unless the plan gives it nobody or the handoff
//     timeout ran out.
//   - Once views agree and the site is quiet, every server has the same
//     plan, records exactly what the plan gives it, and every planned
//     camera is recorded by exactly one server.
//   - With agreeing views, the PSIM hears server.down and server.up of each
//     server alternately: one announcer per event, one notice per episode.
//   - A camera that stops on one server while the plan's new owner runs
//     stops only once the owner's durable footage overlaps what it wrote
//     (unless the handoff timeout ran out or its pipeline never recorded).
//
// # Limits
//
// Announcing rests on the announcer being alive. An announcer that stopped
// and is not yet declared dead announces nothing, and what it would have
// said is not said by another server later. A server declared dead while
// it runs does not know it until it refutes, so for that moment its view
// of itself disagrees with everyone's. Memory of episodes lives in one
// process: a restarted announcer may repeat a server.down or never send
// the server.up of an episode it did not see start.
//
// # Maintenance (drain)
//
// A server in maintenance (Config.Self.Maintenance, persisted by node/)
// publishes Record.Maintenance, and every server plans it as Draining
// (see failover's Maintenance): its own and adopted cameras go to their
// other candidates, it takes none, and it keeps only what fits nowhere
// else. The cameras move make-before-break like any other move. The
// draining server keeps [State.Drain] and tells: a server.maintenance
// event when the drain begins, and once nothing is being handed over any
// more (Releasing empty) one server.maintenance event and notice naming
// each moved camera's new server (Notice.Moved; node/ adds that server's
// address) and what it kept or nobody records. It keeps gossiping
// throughout, so it is never declared dead. The servers that take its
// cameras log failover.started and failover.completed as info events and
// send no notice: the home is not failed, and its own notice names them.
//
// Leaving maintenance ends the Drain (a server.maintenance_ended event
// and notice) and starts a reclaim: the server publishes Record.Reclaim,
// which the planner reads as Failback, until every own camera the plan
// gives it records here with durable footage and no peer runs it any
// more, or failback_after plus twice the handoff timeout passed. So its
// cameras come back, make-before-break, even with failback off; the
// home's failback.completed names them.
//
// # Clean stop
//
// A member that left the cluster (Member.Left: it said goodbye) is not
// up, so its cameras go to its buddies as after a failure, but it opens
// no down episode: its announcer logs server.stopped (info) and tells
// the PSIM, and raises no server.down alarm. A server stopped with
// SIGTERM drains first, so by the time it leaves its cameras are
// recorded elsewhere already.
//
// # Standby (standby.go)
//
// A home asks, with [failover] standby, that the buddy which would adopt
// each of its critical cameras prepare for it: "hot" (its own session
// and an in-memory ring of the last samples, written on takeover) or
// "mirror" (it records the camera too). [StandbyPlacement] is that
// buddy: failover.Compute with the home marked dead, homes taken in name
// order, each seeing the bitrate capacity the sessions placed before it
// took, so the placement never depends on itself. When the plan's choice
// changes (the buddy died, filled up), the session moves with it.
//
//   - A server holds a session (Actions.Standby, beside Cameras) for a
//     camera placed on it that it does not record, that it has
//     credentials for, and that its home records now (Record.Live): the
//     home's own session always comes first. A session it already has
//     waits StandbyYieldAfter for the home to record (a failback hands a
//     camera back before the home's first keyframe), writing on as a
//     mirror if it was writing, then closes.
//   - Taking over is the plan giving the camera to the holder: it leaves
//     Standby for Cameras and the recorder changes the session's mode in
//     place (no reconnect, the ring written first).
//   - Sessions count against their server's bitrate capacity in the real
//     plan (PlanInput) while their home is alive; a dead home's sessions
//     are its cameras' recordings, counted as such.
//   - A session the camera refuses (offline) raises standby.unavailable
//     once, with ConditionStandby; standby.available resolves it when the
//     session works or is no longer held. The failover is then cold.
package control
