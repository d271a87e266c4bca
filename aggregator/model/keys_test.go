package model

import (
	"bytes"
	"testing"
)

// TestAppendKey: the keys built into a reused buffer are those of
// SeriesKey, MetaKey, MarksKey and AgentKey, and leave what the buffer held
// before them alone.
func TestAppendKey(t *testing.T) {
	const node, path = "node-1", "/kubepods/pod1/c 1"
	tests := []struct {
		name string
		kind KeyKind
		want []byte
	}{
		{"series", KindSeries, SeriesKey(node, path)},
		{"metadata", KindMeta, MetaKey(node, path)},
		{"checkpoints", KindMarks, MarksKey(node, path)},
		{"agent record", KindAgent, AgentKey(node)},
	}
	buf := make([]byte, 0, 8)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf = AppendKey(buf[:0], tt.kind, node, path)
			if !bytes.Equal(buf, tt.want) {
				t.Fatalf("AppendKey = %q, want %q", buf, tt.want)
			}
			if got := AppendKey([]byte("x"), tt.kind, node, path); !bytes.Equal(got, append([]byte("x"), tt.want...)) {
				t.Fatalf("AppendKey after x = %q", got)
			}
		})
	}
}

func BenchmarkAppendKey(b *testing.B) {
	var buf []byte
	for b.Loop() {
		buf = AppendKey(buf[:0], KindSeries, "ip-10-0-1-17.ec2.internal", "/kubepods.slice/kubepods-burstable.slice/pod1234/cri-abcdef")
	}
}
