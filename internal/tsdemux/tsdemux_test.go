package tsdemux

import (
	"bytes"
	"testing"
)

func TestRead(t *testing.T) {
	tests := []struct {
		path       string
		codec      string
		sampleRate int // 0: no audio
	}{
		{"../../testdata/h264-aac.ts", H264, 48000},
		{"../../testdata/h265.ts", H265, 0},
	}
	for _, tt := range tests {
		s, err := Read(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if s.Codec != tt.codec || len(s.Video) < 240 {
			t.Errorf("%s: codec %s with %d video AUs, want %s with >= 240 (10 s at 25 fps)", tt.path, s.Codec, len(s.Video), tt.codec)
		}
		for i := 1; i < len(s.Video); i++ {
			if s.Video[i].DTS <= s.Video[i-1].DTS {
				t.Fatalf("%s: DTS not increasing at AU %d", tt.path, i)
			}
		}
		if span := s.Video[len(s.Video)-1].DTS - s.Video[0].DTS; span < 9*90000 || span > 10*90000 {
			t.Errorf("%s: video spans %d ticks, want about 10 s", tt.path, span)
		}
		c, err := Load(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.VideoSamples) != len(s.Video) || !c.VideoSamples[0].Sync {
			t.Errorf("%s: %d samples (first sync %v) from %d AUs", tt.path, len(c.VideoSamples), c.VideoSamples[0].Sync, len(s.Video))
		}
		if tt.sampleRate == 0 {
			if s.AudioConfig != nil || len(s.Audio) > 0 {
				t.Errorf("%s: audio found in a clip without audio", tt.path)
			}
			continue
		}
		if s.AudioConfig == nil || s.AudioConfig.SampleRate != tt.sampleRate || len(s.Audio) == 0 {
			t.Errorf("%s: audio %+v with %d PES, want %d Hz", tt.path, s.AudioConfig, len(s.Audio), tt.sampleRate)
		}

	}
}

func TestParseRejectsBadInput(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":  nil,
		"nosync": make([]byte, 188*3),
		"no pmt": append([]byte{0x47, 0x1f, 0xff, 0x10}, make([]byte, 184)...),
	} {
		if _, err := Parse(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
