package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/kvraft"
)

// TestHistoryWired checks that a replica runs the history: its metrics are
// on /metrics and its reader answers; settings it cannot keep stop the
// start before the store.
func TestHistoryWired(t *testing.T) {
	cfg := config(t.TempDir(), "127.0.0.1:0")
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	resp, err := h2c().Get("http://" + s.Addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"penny_history_minutes_rolled_total 0", "penny_history_roll_errors_total 0",
		"penny_history_compacted_hours_total 0", `penny_history_deleted_records_total{kind="minute"} 0`,
		`penny_history_store_bytes{kind="hour"} 0`, "penny_history_roll_lag_seconds 0"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	now := time.Now()
	series, nodes, err := s.History().Spans(context.Background(), now.Add(-time.Hour), now,
		kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil || len(series) != 0 || len(nodes) != 0 {
		t.Errorf("an empty history: %d series, %d nodes, %v", len(series), len(nodes), err)
	}

	bad := config(t.TempDir(), "127.0.0.1:0")
	bad.History = history.Config{MinuteRetention: time.Minute}
	if _, err := server.Start(context.Background(), bad); !errors.Is(err, history.ErrInvalid) {
		t.Errorf("a minute retention of a minute: %v, want history.ErrInvalid", err)
	}
}
