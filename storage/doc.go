// Package storage owns the recorded footage of one server: fMP4 segment
// files on disk, the bbolt index that says which file holds which time range
// of which camera, crash recovery that makes disk and index agree again, the
// retention that keeps the disk from filling, and the range queries that
// export and the timeline use.
//
// # The files are the truth
//
// A segment file is an init segment (ftyp+moov) followed by fragments
// (moof+mdat), one per part (Options.Part, 1 s by default). The index is
// derived from the files and can be rebuilt from them: recovery at Open
// indexes files it does not know and shortens entries to what their files
// hold.
//
// # Dates
//
// A segment's entry spans [Start, Start + media duration): Start is a
// wall clock (to the millisecond, as in the file name), the rest is the
// camera's media time. The first segment a Writer opens after Begin, a
// discontinuity, a clock jump or a failed write starts at its first
// keyframe's Arrival. A segment that continues an unbroken stream (a cut
// by Segment or by CutSegments) starts at the previous one's end, moved
// towards its keyframe's Arrival by at most one frame interval later or
// half a one earlier (continueAt), so one stream's segments meet within a
// frame and their dates follow a drifting camera clock.
//
// # Durability
//
// The index never claims footage that is not on stable storage:
//
//   - A Writer writes each finished part to its file and only notes the new
//     extent; it never waits for the disk.
//   - Once per sync interval (Options.SyncInterval, default one part) the
//     store's syncer fdatasyncs every file written since the last round
//     (Options.SyncParallelism at a time, 16 unless set; a worker process
//     starts all of its files' at once), fsyncs every folder that
//     gained a segment file or a date folder, and only then commits the
//     index entries covering that data, all cameras in one bbolt
//     transaction (whose own commit is fsynced). A closed segment is
//     indexed closed only after its last sync.
//   - Where the kernel allows io_uring, a round's fdatasyncs are
//     submitted to it at once (IORING_OP_FSYNC with
//     IORING_FSYNC_DATASYNC, internal/uring) and their completions
//     awaited on an eventfd, so no thread of the process blocks in them;
//     the guarantee is fdatasync's either way. A file is counted synced
//     only on the kernel's answer of success for it; when the ring itself
//     fails, every file whose answer did not come is synced again by
//     fdatasync, and the ring is not used again
//     (Options.SyncMethod SyncFdatasync forces that path, and
//     SyncIOURing refuses to open without a ring).
//   - A file whose sync fails is never claimed beyond what its previous
//     round made durable; its Writer abandons it and starts a new file at
//     the next keyframe.
//   - Recovery repairs files before their entries and syncs the repair
//     before committing: open entries are rescanned and closed at the last
//     complete fragment, and the newest closed segments of each camera
//     have their box headers walked, so a tail shorter than indexed (lost
//     by a file system that did not keep unsynced data) is cut and the
//     entry shortened.
//
// What a crash loses, per camera: a kill -9 of the process loses at most
// the part being buffered (≤ 1 part): what was written to the file is in
// the page cache and recovery indexes it. A power cut or kernel crash
// loses at most one part plus one sync interval (≤ 2 s at the defaults):
// the buffered part and whatever was written since the last round.
//
// # Deletion
//
// A segment is deleted by marking its entry deleting, removing the file,
// then deleting the entry; recovery finishes a deletion a crash
// interrupted. Only closed segments are deleted, oldest first across all
// cameras, when older than Retention or while free space is below the
// floor (MinFreeFraction, MinFreeBytes).
//
// # A full disk keeps recording
//
// Free space is checked every sync round, not only every retention pass.
// A write that meets ENOSPC/EDQUOT frees space at once, on the writer's
// goroutine (a sync round so that what was closed can be deleted, then
// retention down to the floor plus a margin of 1 % of the disk, at least
// 1 MiB), and writes the rest of the fragment after what made it in: a
// full disk loses nothing while there is older footage to delete. A
// store without an index (a worker) asks the index owner to delete
// (Options.NeedSpace) and waits up to SpaceWait for the space. Only when
// nothing could be freed does the write fail, and the next parts of that
// failure streak do not wait again: the Writer goes on from the next
// keyframe in a new file. It never ends the camera's session. When only open segments are left to delete, every
// Writer is asked to cut its segment at its next keyframe (at most once
// per 5 s), so the oldest footage becomes deletable. When the index
// itself cannot grow to mark a segment deleting, the file is removed
// anyway: space comes first, and recovery drops entries without files.
//
// # Writers and the index
//
// Writers only write files and hand index updates (camera, entry) to the
// syncer; only the syncer, recovery and Import write the index.
//
// # Copies from peers
//
// Import adopts a finished file another server recorded (backfill): the
// file is checked whole (init and complete fragments), fsynced, moved into
// its camera folder under the recorder's name, the folders synced, and
// only then indexed with the recorder as recorded_by. A crash between the
// move and the commit leaves an unindexed file, which recovery indexes
// (in the two newest date folders) or the next Import replaces. This is the split
// a worker process needs: it writes and syncs files and sends the updates
// to the process that owns index.db.
package storage
