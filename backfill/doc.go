// Package backfill consolidates a server's archive: it copies into the
// home's own storage what peers recorded of its cameras and the home
// lacks — the footage of an outage after the cameras failed back, what was
// recorded while the home was down or restarting, and, after its disk was
// replaced, everything peers still hold within its retention.
//
// # Decision and execution
//
// What to copy is decided by [Plan], a pure function of the home's index
// and the peers' segment listings. The [Runner] gathers those inputs over
// the segments API (with the peer token), and carries the copies out.
//
// # Invariants
//
//   - The index never claims a partial or unverified copy. A copy is
//     written to a temporary file in the data dir (outside the camera
//     folders, so recovery never indexes it), checked against the size the
//     peer lists and the SHA-256 the peer sends (RFC 9530 Repr-Digest of
//     the whole file), and only then adopted with storage's Import, which
//     fsyncs it, moves it into place, syncs the folders and commits.
//   - A copy survives restarts: the segment being copied and its digest
//     are persisted beside the temporary file; after a restart the copy
//     resumes with a range request and the digest still covers the whole
//     file. A mismatch discards the copy and retries it later (with
//     backoff, from another holder if there is one).
//   - Provenance is kept: a copied segment is indexed with home = this
//     server and recorded_by = the peer that recorded it. The peer keeps
//     its copy until its own retention deletes it.
//   - Recording is never delayed: one copy at a time, on a thread at the
//     lowest CPU and best-effort I/O priority, rate-limited (Options.Rate,
//     [storage] backfill_mbps); recording never waits on anything here.
package backfill
