package camsim

import (
	"testing"
)

func TestLoadClip(t *testing.T) {
	tests := []struct {
		path      string
		codec     string
		audio     bool
		minFrames int
	}{
		{"../testdata/h264-aac.ts", "h264", true, 240},
		{"../testdata/h265.ts", "h265", false, 240},
	}
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			c, err := loadClip(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if c.codec != tt.codec {
				t.Errorf("codec = %q, want %q", c.codec, tt.codec)
			}
			if len(c.video) < tt.minFrames {
				t.Errorf("video AUs = %d, want >= %d", len(c.video), tt.minFrames)
			}
			if (c.audioConf != nil) != tt.audio || (len(c.audio) > 0) != tt.audio {
				t.Errorf("audio present = %v, want %v", c.audioConf != nil, tt.audio)
			}
			if tt.audio && c.audioConf.SampleRate != 48000 {
				t.Errorf("sample rate = %d", c.audioConf.SampleRate)
			}
			// 10 s clip at 90 kHz, within a frame or two.
			if c.loop90 < 89*10000 || c.loop90 > 91*10000 {
				t.Errorf("loop = %d, want about 900000", c.loop90)
			}
			for i := 1; i < len(c.video); i++ {
				if c.video[i].dts <= c.video[i-1].dts {
					t.Fatalf("video DTS not increasing at %d", i)
				}
			}
			for i := 1; i < len(c.events); i++ {
				if c.events[i].t90 < c.events[i-1].t90 {
					t.Fatalf("events not sorted at %d", i)
				}
			}
		})
	}
}
