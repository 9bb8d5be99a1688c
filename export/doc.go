// Package export serves recorded footage: one playable fragmented MP4 for
// any time range of a camera, stitched from the segment files of this
// server and of its peers (a buddy that recorded the camera during a
// failover, a mirror), streamed fragment by fragment in constant memory,
// and the site-wide list of a camera's footage behind /api/v1/recordings
// ([Handler.Footage], [Spans]). Reading footage never touches the
// recording path: it opens the files and the index read-only.
//
// # What an export guarantees
//
// An export is meant to be kept as evidence, so these hold for every file
// and the tests check each with tools not written here (ffmpeg, ffprobe,
// go-mp4):
//
//   - The timeline is real time. Output time 0 is the wall clock of the
//     first frame (the keyframe at or before from). A piece that continues
//     the previous one (a hole or overlap of at most two frame intervals:
//     clock jitter between segments) follows it without a jump; a piece
//     after a longer hole goes where its wall clock says, so the hole stays
//     a hole and the file lasts as long as the range.
//   - Every hole longer than two frame intervals of the camera is a Gap, in
//     the X-Buddyrec-Gaps header and the plan, and only those.
//   - Decode times of each track only grow, and no moment is played twice:
//     when two pieces overlap (make-before-break, a partition) the later
//     piece starts at its last keyframe at or before the earlier one's end
//     and the earlier piece is cut right before its own copy of that
//     keyframe (its keyframe within joinWindow of it: two recorders date
//     the same frame a few milliseconds apart), so the keyframe is played
//     once and no frame before it is lost. Every piece starts at a
//     keyframe, so a join never needs a picture from another recorder.
//   - The file says when it was recorded: mvhd, tkhd and mdhd creation times
//     are the first frame's wall clock (seconds), and every moof is preceded
//     by a prft box giving the NTP time at which its first sample of the
//     reference track reached the recorder, so each fragment maps to real
//     time even where the timeline was made continuous.
//   - The SHA-256 of exactly the bytes sent is an HTTP trailer
//     (DigestTrailer, and ContentDigestTrailer per RFC 9530), also when the
//     export stopped early (ErrorTrailer then says why).
//
// Codec parameters must be the same for the whole file: the export ends
// where they change, with a Gap giving the reason.
package export
