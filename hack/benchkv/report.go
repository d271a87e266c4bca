package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// result of one workload on one system: the sum of its rounds.
type result struct {
	ops      int
	errs     int
	elapsed  time.Duration
	p50, p99 time.Duration
	// lat holds the latency of every successful call until finish.
	lat []time.Duration
	// serverCPU is the CPU time of the system's server processes during
	// the run, clientCPU the load generator's (which drives one system at
	// a time).
	serverCPU, clientCPU time.Duration
	// busy is the CPU time the whole machine spent on anything but idle
	// during the run (all processes: the system's servers, the load
	// generator, the kernel and whatever else runs).
	busy time.Duration
}

// add adds a round's measurements to r.
func (r *result) add(o result) {
	r.ops += o.ops
	r.errs += o.errs
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	r.serverCPU += o.serverCPU
	r.clientCPU += o.clientCPU
	r.busy += o.busy
}

// finish computes the percentiles and drops the latencies.
func (r *result) finish() {
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		r.p50 = r.lat[len(r.lat)*50/100]
		r.p99 = r.lat[min(len(r.lat)-1, len(r.lat)*99/100)]
	}
	r.lat = nil
}

func (r result) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// cpuPerOp is d per successful operation, in µs.
func (r result) cpuPerOp(d time.Duration) float64 {
	if r.ops == 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(r.ops)
}

// cores returns the cores the system and the load generator kept busy
// during the run, and those the rest of the machine did (other processes,
// the kernel's own work): a measure of interference.
func (r result) cores() (own, other float64) {
	if r.elapsed <= 0 {
		return 0, 0
	}
	s := r.elapsed.Seconds()
	own = (r.serverCPU + r.clientCPU).Seconds() / s
	return own, max(r.busy.Seconds()/s-own, 0)
}

// drive runs op from clients goroutines for d and measures each call.
func drive(d time.Duration, clients int, op func(ctx context.Context, client int, rng *rand.Rand) error) result {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), uint64(start.UnixNano())))
			var mine []time.Duration
			bad := 0
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				err := op(ctx, cl, rng)
				cancel()
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return result{ops: len(lat), errs: errs, elapsed: time.Since(start), lat: lat}
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU returns the user and system CPU time the processes have used.
func procCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		d, err := parseStatCPU(string(b))
		if err != nil {
			return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
		}
		total += d
	}
	return total, nil
}

// parseStatCPU reads utime + stime from a /proc/PID/stat line.
func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("utime or stime %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// machineBusy returns the CPU time all CPUs spent not idle (neither idle
// nor waiting for I/O) since boot, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("machine cpu time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	d, err := parseProcStat(line)
	if err != nil {
		return 0, fmt.Errorf("machine cpu time: %w", err)
	}
	return d, nil
}

// parseProcStat reads the busy time from the "cpu" line of /proc/stat:
// every field but idle (4th) and iowait (5th).
func parseProcStat(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected first line %q", line)
	}
	var busy int64
	// guest and guest_nice (9th, 10th) are already counted in user and nice.
	for i, s := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %d %q: %w", i+1, s, err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * clockTick, nil
}

// selfCPU returns the user and system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Workload keys, to find the results the targets compare.
func putKey(clients int) string     { return fmt.Sprintf("put-%d", clients) }
func boundedKey(clients int) string { return fmt.Sprintf("bounded-%d", clients) }

const batchKey = "batch"

// results maps a workload's key and a system's name to its result.
type results map[string]map[string]result

func (rs results) add(key, system string, r result) {
	if rs[key] == nil {
		rs[key] = map[string]result{}
	}
	rs[key][system] = r
}

// pair returns the Penny and etcd results of a workload, if both ran.
func (rs results) pair(key string) (penny, etcd result, ok bool) {
	penny, ok1 := rs[key]["penny"]
	etcd, ok2 := rs[key]["etcd"]
	return penny, etcd, ok1 && ok2 && etcd.ops > 0
}

// target is one line of the target table.
type target struct {
	name, measured, verdict string
}

// targets compares the runs with the issues' targets: batched writes at
// least 2x etcd's, single-put p99 no worse than etcd's, bounded reads at
// least 3x etcd's serializable reads at every bounded client count. A
// target whose workloads did not run is left out.
func targets(rs results, boundedClients []int) []target {
	var ts []target
	verdict := func(met bool) string {
		if met {
			return "met"
		}
		return "not met"
	}
	if p, e, ok := rs.pair(batchKey); ok {
		x := p.opsPerSec() / e.opsPerSec()
		ts = append(ts, target{"batched writes ≥ 2× etcd",
			fmt.Sprintf("%s / %s batches/s = %.1f×", thousands(p.opsPerSec()), thousands(e.opsPerSec()), x), verdict(x >= 2)})
	}
	if p, e, ok := rs.pair(putKey(1)); ok {
		ts = append(ts, target{"single-put p99 no worse than etcd",
			fmt.Sprintf("%s vs %s", fmtDur(p.p99), fmtDur(e.p99)), verdict(p.p99 <= e.p99)})
	}
	for _, n := range boundedClients {
		if p, e, ok := rs.pair(boundedKey(n)); ok {
			x := p.opsPerSec() / e.opsPerSec()
			ts = append(ts, target{fmt.Sprintf("bounded reads ≥ 3× etcd serializable, %d clients", n),
				fmt.Sprintf("%s / %s = %.2f×", thousands(p.opsPerSec()), thousands(e.opsPerSec()), x), verdict(x >= 3)})
		}
	}
	return ts
}

// thousands formats v rounded, with commas between thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// parseClients parses a comma-separated list of positive client counts.
func parseClients(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("client count %q: want a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
