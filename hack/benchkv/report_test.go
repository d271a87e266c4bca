package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "42 (penny) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 1000 0 0", 3 * time.Second, false},
		{"spaces and parens in the name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 30 * time.Millisecond, false},
		{"no name", "7 a R 1", 0, true},
		{"short", "7 (a) R 1 2 3", 0, true},
		{"not a number", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 2 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatCPU: err %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseStatCPU = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseClients(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"16,64", []int{16, 64}, false},
		{" 8 , 32 ", []int{8, 32}, false},
		{"64", []int{64}, false},
		{"", nil, true},
		{"16,0", nil, true},
		{"16,x", nil, true},
	}
	for _, tt := range tests {
		got, err := parseClients(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseClients(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestThousands(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {999.4, "999"}, {999.6, "1,000"}, {20317, "20,317"}, {1234567, "1,234,567"},
	}
	for _, tt := range tests {
		if got := thousands(tt.in); got != tt.want {
			t.Errorf("thousands(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTargets(t *testing.T) {
	sec := time.Second
	rs := results{}
	rs.add(batchKey, "penny", result{ops: 125, elapsed: sec})
	rs.add(batchKey, "etcd", result{ops: 50, elapsed: sec})
	rs.add(putKey(1), "penny", result{ops: 1, elapsed: sec, p99: 3 * time.Millisecond})
	rs.add(putKey(1), "etcd", result{ops: 1, elapsed: sec, p99: 2 * time.Millisecond})
	rs.add(boundedKey(16), "penny", result{ops: 14000, elapsed: sec})
	rs.add(boundedKey(16), "etcd", result{ops: 5000, elapsed: sec})
	rs.add(boundedKey(64), "penny", result{ops: 20000, elapsed: 2 * sec})
	rs.add(boundedKey(64), "etcd", result{ops: 3000, elapsed: sec})
	rs.add(boundedKey(128), "penny", result{ops: 1, elapsed: sec}) // etcd did not run

	got := targets(rs, []int{16, 64, 128})
	want := []target{
		{"batched writes ≥ 2× etcd", "125 / 50 batches/s = 2.5×", "met"},
		{"single-put p99 no worse than etcd", "3.0ms vs 2.0ms", "not met"},
		{"bounded reads ≥ 3× etcd serializable, 16 clients", "14,000 / 5,000 = 2.80×", "not met"},
		{"bounded reads ≥ 3× etcd serializable, 64 clients", "10,000 / 3,000 = 3.33×", "met"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("targets:\n got %q\nwant %q", got, want)
	}
	if got := targets(results{}, []int{16}); len(got) != 0 {
		t.Errorf("targets of no runs = %q, want none", got)
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name, line string
		want       time.Duration
		wantErr    bool
	}{
		{"full", "cpu  100 5 50 9000 40 1 4 0 30 0", 1600 * time.Millisecond, false},
		{"no steal", "cpu  100 0 50 9000 40 1 4", 1550 * time.Millisecond, false},
		{"a per-CPU line", "cpu0 100 0 50 9000 40 1 4 0 0 0", 0, true},
		{"short", "cpu 1 2", 0, true},
		{"not a number", "cpu  1 x 3 4 5 6 7 8", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.line)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseProcStat(%q) = %v, %v; want %v, error %v", tt.line, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestResultRounds(t *testing.T) {
	ms := time.Millisecond
	var sum result
	rounds := []result{
		{ops: 3, errs: 1, elapsed: time.Second, lat: []time.Duration{5 * ms, 1 * ms, 3 * ms},
			serverCPU: 600 * ms, clientCPU: 400 * ms, busy: 1500 * ms},
		{ops: 2, elapsed: time.Second, lat: []time.Duration{2 * ms, 4 * ms},
			serverCPU: 500 * ms, clientCPU: 500 * ms, busy: 900 * ms}, // less busy than its own: other is 0
	}
	for _, r := range rounds {
		sum.add(r)
	}
	sum.finish()
	if sum.ops != 5 || sum.errs != 1 || sum.elapsed != 2*time.Second || sum.lat != nil {
		t.Fatalf("sum = %+v", sum)
	}
	if sum.p50 != 3*ms || sum.p99 != 5*ms {
		t.Errorf("p50, p99 = %v, %v; want 3ms, 5ms", sum.p50, sum.p99)
	}
	if got := sum.opsPerSec(); got != 2.5 {
		t.Errorf("ops/s = %v, want 2.5", got)
	}
	if got := sum.cpuPerOp(sum.serverCPU); got != 220000 {
		t.Errorf("server CPU per op = %vµs, want 220000µs", got)
	}
	own, other := sum.cores()
	if own != 1 || math.Abs(other-0.2) > 1e-9 {
		t.Errorf("cores = %v own, %v other; want 1, 0.2", own, other)
	}
	var none result
	none.finish()
	if o, x := none.cores(); none.opsPerSec() != 0 || none.cpuPerOp(time.Second) != 0 || o != 0 || x != 0 {
		t.Errorf("an empty result reports %v ops/s, %v cores", none.opsPerSec(), o)
	}
}
