package shipper

import (
	"slices"
	"testing"
)

func seqs(frames []frame) []uint64 {
	out := []uint64{}
	for _, f := range frames {
		out = append(out, f.seq)
	}
	return out
}

func TestBufferPush(t *testing.T) {
	tests := []struct {
		name        string
		limit       int
		sizes       []int // of frames 1, 2, ... pushed in order
		wantKept    []uint64
		wantDropped []uint64 // by the last push
		wantBytes   int
	}{
		{"within the limit", 300, []int{100, 100, 100}, []uint64{1, 2, 3}, []uint64{}, 300},
		{"over the limit drops the oldest", 250, []int{100, 100, 100}, []uint64{2, 3}, []uint64{1}, 200},
		{"drops as many as needed", 250, []int{100, 100, 200}, []uint64{3}, []uint64{1, 2}, 200},
		{"a frame over the limit is kept alone", 250, []int{100, 100, 400}, []uint64{3}, []uint64{1, 2}, 400},
		{"a lone frame over the limit is kept", 50, []int{400}, []uint64{1}, []uint64{}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := buffer{limit: tt.limit}
			var dropped []frame
			for i, n := range tt.sizes {
				dropped = b.push(frame{seq: uint64(i + 1), data: make([]byte, n)})
			}
			if got := seqs(b.frames); !slices.Equal(got, tt.wantKept) {
				t.Errorf("kept %v, want %v", got, tt.wantKept)
			}
			if got := seqs(dropped); !slices.Equal(got, tt.wantDropped) {
				t.Errorf("dropped %v, want %v", got, tt.wantDropped)
			}
			if b.bytes != tt.wantBytes {
				t.Errorf("bytes %d, want %d", b.bytes, tt.wantBytes)
			}
		})
	}
}

func TestBufferAck(t *testing.T) {
	tests := []struct {
		name      string
		ack       uint64
		wantAcked []uint64
		wantKept  []uint64
	}{
		{"nothing", 0, []uint64{}, []uint64{3, 4, 5}},
		{"below the oldest", 2, []uint64{}, []uint64{3, 4, 5}},
		{"the oldest", 3, []uint64{3}, []uint64{4, 5}},
		{"up to the middle", 4, []uint64{3, 4}, []uint64{5}},
		{"everything", 5, []uint64{3, 4, 5}, []uint64{}},
		{"beyond the newest", 9, []uint64{3, 4, 5}, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := buffer{limit: 1 << 20}
			for seq := uint64(3); seq <= 5; seq++ {
				b.push(frame{seq: seq, data: make([]byte, 10)})
			}
			acked := b.ack(tt.ack)
			if got := seqs(acked); !slices.Equal(got, tt.wantAcked) {
				t.Errorf("acked %v, want %v", got, tt.wantAcked)
			}
			if got := seqs(b.frames); !slices.Equal(got, tt.wantKept) {
				t.Errorf("kept %v, want %v", got, tt.wantKept)
			}
			if b.bytes != 10*len(tt.wantKept) {
				t.Errorf("bytes %d, want %d", b.bytes, 10*len(tt.wantKept))
			}
		})
	}
}

func TestBufferDrain(t *testing.T) {
	b := buffer{limit: 1 << 20}
	b.push(frame{seq: 1, data: make([]byte, 10)})
	b.push(frame{seq: 2, data: make([]byte, 10)})
	if got := seqs(b.drain()); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("drained %v", got)
	}
	if len(b.frames) != 0 || b.bytes != 0 {
		t.Errorf("after drain: %d frames, %d bytes", len(b.frames), b.bytes)
	}
}
