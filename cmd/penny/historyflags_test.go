package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/cmd/penny/local"
)

// TestHistoryFlags checks the history's flags of penny aggregator and
// penny local: defaults, values, and refusals with the flag's name.
func TestHistoryFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	required := []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://a:1"}
	tests := []struct {
		name string
		args []string
		want history.Config // Memory, MinuteRetention, HourRetention
		err  string
	}{
		{name: "defaults", want: history.Config{Memory: cost.MemoryRSS, MinuteRetention: 48 * time.Hour, HourRetention: 90 * 24 * time.Hour}},
		{name: "set", args: []string{"--cost-memory-usage=working-set", "--history-minute-retention=24h", "--history-hour-retention", "720h"},
			want: history.Config{Memory: cost.MemoryWorkingSet, MinuteRetention: 24 * time.Hour, HourRetention: 720 * time.Hour}},
		{name: "rss plus cache", args: []string{"--cost-memory-usage", "rss+cache"},
			want: history.Config{Memory: cost.MemoryRSSPageCache, MinuteRetention: 48 * time.Hour, HourRetention: 90 * 24 * time.Hour}},
		{name: "unknown measure", args: []string{"--cost-memory-usage=pss"}, err: "--cost-memory-usage"},
		{name: "minutes shorter than an hour", args: []string{"--history-minute-retention=10m"}, err: "--history-minute-retention"},
		{name: "hours shorter than minutes", args: []string{"--history-hour-retention=24h"}, err: "at least the minute retention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ac, aerr := parseAggregatorFlags(append(append([]string{}, required...), tt.args...), &strings.Builder{})
			lc, lerr := parseLocalFlags(tt.args, &strings.Builder{})
			for _, err := range []error{aerr, lerr} {
				switch {
				case tt.err == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tt.err != "" && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.err)):
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.err)
				}
			}
			if tt.err != "" {
				return
			}
			got, err := ac.History.config()
			if err != nil || got.Memory != tt.want.Memory || got.MinuteRetention != tt.want.MinuteRetention || got.HourRetention != tt.want.HourRetention {
				t.Errorf("aggregator: %+v %v, want %+v", got, err, tt.want)
			}
			wl := local.Config{CostMemory: tt.want.Memory, HistoryMinuteRetention: tt.want.MinuteRetention,
				HistoryHourRetention: tt.want.HourRetention}
			if lc.CostMemory != wl.CostMemory || lc.HistoryMinuteRetention != wl.HistoryMinuteRetention || lc.HistoryHourRetention != wl.HistoryHourRetention {
				t.Errorf("local: %+v", lc)
			}
		})
	}
}
