// Package failover is the planner: a pure, deterministic function from the
// site view to "which server records which camera".
//
// Every server runs [Compute] over the same gossiped view, so no two servers
// adopt the same camera once their views agree. Compute does no I/O, reads no
// clock, starts no goroutine, uses no randomness and never depends on map
// iteration order: equal inputs give equal plans on every machine, whatever
// the order of the Servers, Cameras and Recording slices. (Buddies is a
// priority list, so its order is meaningful.)
//
// # Identities
//
// A camera's id is its home server's name, "/", and its name: "rec-a/lobby"
// (see [CameraID]). The home is the server whose configuration lists the
// camera. Its Mode, Failback and Buddies decide what happens to the camera
// when the home fails. The site should never hold two servers with one name
// or two cameras with one id. If it does, each such server or camera is
// left out of the plan and reported in [Plan.Unplaced] with the reason
// "invalid". A camera whose bitrate is negative, NaN, infinite or above 1e9
// Mbit/s is reported the same way.
//
// # Candidates
//
// The candidates of a camera are, in priority order, its home and then the
// home's Buddies (N+1, N+2 ...). Buddy names that name no server, the home
// itself and repeated names are skipped. When the home's Mode is "critical",
// a non-critical camera has only its home as a candidate. Any other Mode,
// including "", means "all". Only an Alive candidate can record a camera, and
// a camera is never given to a server that is not one of its candidates.
//
// # Claims
//
// Server.Recording lists the camera ids that a server says it records now:
// its claims. A claim counts only when the claiming server is Alive and is a
// candidate of the camera. Claims from dead servers, unknown ids and
// non-candidates are ignored. When several live candidates claim one camera,
// for example after a partition heals, the claimant is the one that comes
// first in the camera's candidate order, and the camera ends with exactly one
// owner.
//
// # Where a camera goes
//
// Cameras are placed in two rounds: all critical cameras first, then all
// others. Each round has three steps, and inside each step cameras are taken
// in (home, name) order.
//
//  1. Keep. A camera with a claimant stays with that claimant if the claimant
//     has room. This holds whether the home is alive or dead. A home that
//     comes back does not take its cameras back by itself, and a
//     higher-priority buddy that comes back does not take them either, so
//     cameras do not thrash.
//  2. Return. A camera kept by a buddy goes back to its home if the home is
//     Alive and Stable (healthy for at least failback_after, which the caller
//     decides), its home has Failback set, and the home has room. If the home
//     has no room, the camera stays with the buddy. Each return frees room on
//     the buddy, and cameras waiting to return to that buddy are tried again,
//     until no camera can move. With Failback false, cameras are sticky: they
//     stay with the buddy for as long as it is alive and has room. With
//     Failback true and the home not yet Stable, they stay until it is Stable.
//  3. Place. Each camera that has no claimant, or whose claimant had no room,
//     goes to the first Alive candidate, in priority order, that has room. An
//     alive home therefore records its own cameras, and a dead home's cameras
//     go to its first live buddy with room. Cameras whose home is alive are
//     placed before cameras whose home is dead, so a server's own cameras are
//     never pushed out by cameras it would adopt. A camera that fits on no
//     candidate is reported in Plan.Unplaced. The reason is
//     "no_candidate_alive" when none of its candidates is Alive, and
//     "capacity" otherwise. The caller raises the alarm.
//
// # Maintenance
//
// A Draining server (in maintenance) is alive but is a candidate of last
// resort: its claims keep nothing, it takes no camera back (no Return),
// and Place tries it only after every other live candidate of the camera
// had no room, the claimant first. So its own and adopted cameras move to
// their other candidates as capacity allows, it adopts nothing while
// another candidate can, and what fits nowhere else stays on it (or, when
// its home is dead, on the first draining candidate with room) rather
// than going unrecorded. A camera is unplaced only when no live
// candidate, draining or not, has room.
//
// So when capacity is short, critical cameras win over all other cameras.
// Among cameras of equal criticality, cameras that are already recording
// where they may stay win over cameras that would have to start. Next come
// cameras whose home is alive. The remaining ties are broken by (home, name).
//
// # Capacity
//
// A server's Capacity bounds what it records, its own cameras and adopted
// ones together. It has two limits: the number of cameras and the sum of
// BitrateMbps. Each limit that is zero or less (or NaN, infinite, or above
// 1e9 for bitrate) means no limit on that dimension. A limit is never
// exceeded. Bitrates are added in whole kbit/s (each value is rounded to the
// nearest kbit/s), so sums are exact and the same on every machine. For
// example, three 0.1 Mbit/s cameras fit a 0.3 Mbit/s limit.
//
// # Guarantees
//
// The tests check these properties over thousands of random sites:
//
//   - Every valid camera is either in Plan.Owner, exactly once, or in
//     Plan.Unplaced.
//   - No dead server owns a camera, and every owner is a candidate of the
//     camera it owns.
//   - No capacity is exceeded.
//   - An unplaced camera fits on none of its Alive candidates as the plan
//     leaves them.
//   - Critical cameras come first: a critical camera is never left unplaced
//     while the non-critical cameras on one of its candidates hold the room
//     it needs.
//   - The plan is a fixed point. Recompute it with each server's Recording
//     set to [Plan.For] and the same servers, and the same plan comes back.
//
// # The site's modes
//
// Every mode comes out of this one model:
//
//   - Mirrored: A names B, and B names A.
//   - Spread servers: several servers name one standby, and its Capacity
//     decides how many failed servers it can carry. Critical cameras go
//     first.
//   - Spread cameras: Mode "critical" sends only critical cameras to buddies.
//   - N+1 and N+2: a longer Buddies list. A server may be the buddy of many.
package failover
