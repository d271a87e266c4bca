package zapslog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestLevelsAndFields(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Debug("hidden")
	l.With(zap.String("dir", "/d")).Warn("repairing", zap.Int("n", 3))
	l.Error("broken")
	out := buf.String()
	tests := []struct {
		want string
		ok   bool
	}{
		{"hidden", false},
		{`level=WARN msg=repairing`, true},
		{"dir=/d", true},
		{"n=3", true},
		{"level=ERROR msg=broken", true},
	}
	for _, tt := range tests {
		if strings.Contains(out, tt.want) != tt.ok {
			t.Errorf("output contains %q = %v, want %v:\n%s", tt.want, !tt.ok, tt.ok, out)
		}
	}
	if New(nil) == nil {
		t.Fatal("New(nil) returned nil")
	}
}
