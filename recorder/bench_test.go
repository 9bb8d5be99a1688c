package recorder

import (
	"log/slog"
	"testing"
)

// Baseline 1080p SPS (POC type 2) and a PPS, as used by mediamtx's tests.
var (
	benchSPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
		0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}
	benchPPS = []byte{0x08, 0x06, 0x07, 0x08}
)

// BenchmarkOnVideo measures the per-frame work done on gortsplib's reading
// goroutine (parameter filtering, DTS, AVCC payload, enqueue), GOP of 25.
// Run: go test -run x -bench OnVideo -benchmem ./recorder/
func BenchmarkOnVideo(b *testing.B) {
	p := newPipeline(Camera{ID: "a/b"}, ManagerOptions{Logger: slog.New(slog.DiscardHandler)}, &hub{subs: map[*subscriber]struct{}{}})
	s := &session{p: p, queue: newItemQueue(1), needBegin: true, audioTrack: -1,
		video: newVideoRemuxer(false, nil, benchSPS, benchPPS)}
	if s.video.sps == nil {
		b.Fatal("benchmark SPS does not parse")
	}
	idr := append([]byte{0x65}, make([]byte, 50000)...)
	nonIDR := append([]byte{0x41}, make([]byte, 8000)...)
	aud := []byte{0x09, 0xf0}
	auIDR := [][]byte{aud, benchSPS, benchPPS, idr}
	auP := [][]byte{aud, nonIDR}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		au := auP
		if i%25 == 0 {
			au = auIDR
		}
		s.onVideo(accessUnitOf(au, 0), int64(i)*3600)
		s.queue.pop()
	}
	if s.stream == nil {
		b.Fatal("no stream began")
	}
}
