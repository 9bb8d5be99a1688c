package storage

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// BenchmarkWrite writes a 2 Mbit/s-like camera: 25 fps H.264 with a
// keyframe every second (40 kB) and 8 kB P-frames, plus 48 kHz AAC, into
// 60 s segments with 1 s parts. One op is one video frame with the audio
// that goes with it; SetBytes makes MB/s the recorded bitrate.
//
//	go test -run '^$' -bench BenchmarkWrite -benchmem ./storage/
func BenchmarkWrite(b *testing.B) {
	c := loadClip(b, "../testdata/h264-aac.ts")
	st := openTestStore(b, b.TempDir(), func(o *Options) { o.Segment = 60 * time.Second })
	tracks := []Track{c.video, {Codec: &mp4.CodecMPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}}, TimeScale: 48000}}
	w, err := st.Begin(Stream{Camera: "rec-a/bench", Home: "rec-a", Tracks: tracks})
	if err != nil {
		b.Fatal(err)
	}
	idr := c.vsamples[0].Payload // real IDR so the file stays decodable
	pframe := make([]byte, 8000)
	aac := make([]byte, 300)
	start := time.Now()
	var audioDTS int64
	b.SetBytes(int64(8000 + 32000/25 + 300*47/25))
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		dts := int64(i) * 3600
		s := Sample{Track: 0, DTS: dts, Sync: i%25 == 0, Payload: pframe, Arrival: start.Add(ticksToDuration(dts, 90000))}
		if s.Sync {
			s.Payload = idr
		}
		if err := w.Write(s); err != nil {
			b.Fatal(err)
		}
		for audioDTS*90000 < (dts+3600)*48000 {
			a := Sample{Track: 1, DTS: audioDTS, Sync: true, Payload: aac, Arrival: start.Add(ticksToDuration(audioDTS, 48000))}
			if err := w.Write(a); err != nil {
				b.Fatal(err)
			}
			audioDTS += 1024
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := b.Elapsed()
	footage := time.Duration(b.N) * 40 * time.Millisecond
	if elapsed > 0 {
		b.ReportMetric(float64(footage)/float64(elapsed), "x-realtime")
	}
	// CPU (all threads, including bbolt's fsyncs) per frame and per camera
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(cpu)/float64(footage)*100, "cpu%/camera")
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestAppendPartMatchesMediacommon pins the hand-written fragment encoder
// to mediacommon's fmp4.Part.Marshal byte for byte, and the buffers it
// writes to the payloads, whether they came in one buffer or in pieces.
func TestAppendPartMatchesMediacommon(t *testing.T) {
	mk := func(n int, nonSync, cto bool) []partSample {
		var out []partSample
		for i := range n {
			s := fmp4.Sample{Duration: uint32(3000 + i), Payload: bytes.Repeat([]byte{byte(i)}, 10+i)}
			if nonSync && i > 0 {
				s.IsNonSyncSample = true
			}
			if cto {
				s.PTSOffset = int32(i%3) * 3000
				if i == 2 {
					s.PTSOffset = -1500
				}
			}
			out = append(out, newPartSample(s, Sample{Payload: s.Payload}))
		}
		return out
	}
	// inPieces is mk's samples as the recorder hands video over: each
	// payload in three pieces, one of them empty.
	inPieces := func(in []partSample) []partSample {
		out := make([]partSample, len(in))
		for i, s := range in {
			p := s.data.Payload
			out[i] = newPartSample(s.Sample, Sample{Pieces: [][]byte{p[:3], p[3:3], p[3:]}})
		}
		return out
	}
	cases := []struct {
		name   string
		tracks []partTrack
	}{
		{"video only, sync", []partTrack{{ID: 1, BaseTime: 0, Samples: mk(3, false, false)}}},
		{"video non-sync with cto", []partTrack{{ID: 1, BaseTime: 90000, Samples: mk(25, true, true)}}},
		{"video and audio", []partTrack{{ID: 1, BaseTime: 1 << 40, Samples: mk(25, true, false)}, {ID: 2, BaseTime: 48000, Samples: mk(47, false, false)}}},
		{"audio only track 2", []partTrack{{ID: 2, BaseTime: 7, Samples: mk(1, false, false)}}},
		{"video in pieces and audio", []partTrack{{ID: 1, BaseTime: 3, Samples: inPieces(mk(25, true, true))}, {ID: 2, BaseTime: 48000, Samples: mk(47, false, false)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fmp4.Part{SequenceNumber: 42}
			for _, tr := range tc.tracks {
				pt := &fmp4.PartTrack{ID: int(tr.ID), BaseTime: tr.BaseTime}
				for i := range tr.Samples {
					ms := tr.Samples[i].Sample
					ms.Payload = tr.Samples[i].data.Bytes()
					pt.Samples = append(pt.Samples, &ms)
				}
				p.Tracks = append(p.Tracks, pt)
			}
			var want seekablebuffer.Buffer
			if err := p.Marshal(&want); err != nil {
				t.Fatal(err)
			}
			hdr := appendPartHeader([]byte("prefix"), 42, tc.tracks)
			got := bytes.Join(partBuffers(nil, hdr, tc.tracks), nil)
			if !bytes.Equal(got[6:], want.Bytes()) {
				t.Errorf("fragment differs from mediacommon:\n got %x\nwant %x", got[6:], want.Bytes())
			}
		})
	}
}
