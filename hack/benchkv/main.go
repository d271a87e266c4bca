// Command benchkv compares a 3-member Penny kvraft cluster (`penny
// aggregator`) with a 3-member etcd cluster on loopback, both with fsync on,
// running the same workloads in the same run, and prints a table and the
// targets it is held to.
//
// It starts and stops both clusters itself:
//
//	go build -o _output/penny ./cmd/penny
//	go run ./hack/benchkv --penny _output/penny --etcd /usr/bin/etcd
//
// Each workload runs on both systems in turns (--rounds, alternating the
// order), so that both meet the same interference from anything else on
// the machine; the table reports the CPU time each system's servers and
// the load generator spent per operation, and the cores the rest of the
// machine kept busy meanwhile.
//
// With --cpuprofile-dir it writes a CPU profile of every Penny replica
// (the whole run, through PENNY_CPUPROFILE) and one of the load generator
// per workload, system and round (its measured part only; pprof merges
// the rounds' files).
//
// It is a benchmark, not a test: it asserts nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

type config struct {
	penny, etcd    string
	duration       time.Duration
	keys           int
	valueSize      int
	batchSize      int
	preloadBatch   int
	batchClients   int
	readClients    int
	boundedClients []int
	maxStaleness   time.Duration
	keepDir        bool
	putClients     []int
	only           string
	pennyFlags     string
	etcdFlags      string
	pennyProto     string
	etcdGRPCConns  int
	profileDir     string
	rounds         int
}

func (c *config) Validate() error {
	var errs []error
	for name, p := range map[string]string{"--penny": c.penny, "--etcd": c.etcd} {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.duration <= 0 || c.keys <= 0 || c.valueSize <= 0 || c.batchSize <= 0 || c.preloadBatch <= 0 || c.batchClients <= 0 || c.readClients <= 0 ||
		c.etcdGRPCConns <= 0 || len(c.boundedClients) == 0 || c.rounds <= 0 {
		errs = append(errs, errors.New("durations, sizes and client counts must be positive"))
	}
	if c.pennyProto != protoHTTP1 && c.pennyProto != protoH2C {
		errs = append(errs, fmt.Errorf("--penny-protocol %q: want %s or %s", c.pennyProto, protoHTTP1, protoH2C))
	}
	return errors.Join(errs...)
}

func main() {
	var c config
	var bounded string
	flag.StringVar(&c.penny, "penny", "_output/penny", "penny binary")
	flag.StringVar(&c.etcd, "etcd", "/usr/bin/etcd", "etcd binary (3.4 from Debian)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured time per workload and system")
	flag.IntVar(&c.rounds, "rounds", 5, "turns the systems take at each workload, alternating, to share the duration")
	flag.IntVar(&c.keys, "keys", 10000, "key space of puts and reads")
	flag.IntVar(&c.valueSize, "value-size", 256, "value size in bytes")
	flag.IntVar(&c.batchSize, "batch-size", 1000, "keys per batched write")
	flag.IntVar(&c.preloadBatch, "preload-batch", 1000, "keys per batched write of the preload (etcd 3.4's serializable reads copy a buffer as large as the largest burst of writes it has seen)")
	flag.IntVar(&c.batchClients, "batch-clients", 4, "concurrent batch writers")
	flag.IntVar(&c.readClients, "read-clients", 64, "concurrent linearizable readers")
	flag.StringVar(&bounded, "bounded-clients", "16,64", "concurrent bounded (Penny) / serializable (etcd) readers, one workload per count")
	flag.IntVar(&c.etcdGRPCConns, "etcd-conns", 8, "gRPC connections the etcd clients share")
	flag.DurationVar(&c.maxStaleness, "max-staleness", 500*time.Millisecond, "staleness bound of Penny's bounded reads")
	flag.BoolVar(&c.keepDir, "keep", false, "keep the data and log directory")
	flag.StringVar(&c.pennyFlags, "penny-flags", "", "extra flags for every penny aggregator, space-separated")
	flag.StringVar(&c.etcdFlags, "etcd-flags", "", "extra flags for every etcd member, space-separated")
	flag.StringVar(&c.pennyProto, "penny-protocol", protoHTTP1, "protocol of Penny's clients: http1 (keep-alive, a connection per concurrent request) or h2c (HTTP/2 without TLS, one connection per member)")
	flag.StringVar(&c.only, "only", "", "run only the workloads whose name contains this")
	flag.StringVar(&c.profileDir, "cpuprofile-dir", "", "write CPU profiles of the Penny replicas and of the load generator here")
	flag.Parse()
	c.putClients = []int{1, 16, 256}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	var err error
	if c.boundedClients, err = parseClients(bounded); err != nil {
		fmt.Fprintln(os.Stderr, "benchkv: --bounded-clients:", err)
		os.Exit(2)
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "benchkv:", err)
		os.Exit(2)
	}
	if err := run(c, log, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchkv:", err)
		os.Exit(1)
	}
}

type workload struct {
	key     string // names its results for the targets
	name    string
	clients int
	op      func(s system) func(ctx context.Context, client int, rng *rand.Rand) error
}

// keyNames are the n keys the workloads use, formatted once.
func keyNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench/%08d", i)
	}
	return names
}

// benchValue is the value every put writes.
func benchValue(c config) []byte {
	value := make([]byte, c.valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	return value
}

func workloads(c config) []workload {
	value := benchValue(c)
	names := keyNames(c.keys)
	key := func(rng *rand.Rand) string { return names[rng.IntN(len(names))] }
	var ws []workload
	for _, n := range c.putClients {
		ws = append(ws, workload{putKey(n), fmt.Sprintf("put, %d client(s)", n), n, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error { return s.put(ctx, cl, key(rng), value) }
		}})
	}
	ws = append(ws,
		workload{batchKey, fmt.Sprintf("batch of %d puts, %d clients", c.batchSize, c.batchClients), c.batchClients, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error {
				// Distinct keys: etcd rejects a transaction that puts a key twice.
				keys := make([]string, c.batchSize)
				first := rng.IntN(c.keys)
				for i := range keys {
					keys[i] = names[(first+i)%c.keys]
				}
				return s.batch(ctx, cl, keys, value)
			}
		}},
		workload{fmt.Sprintf("linearizable-%d", c.readClients), fmt.Sprintf("linearizable get, %d clients", c.readClients), c.readClients, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error { return s.read(ctx, cl, key(rng), false) }
		}},
	)
	for _, n := range c.boundedClients {
		ws = append(ws, workload{boundedKey(n), fmt.Sprintf("bounded %v (penny) / serializable (etcd) get, %d clients", c.maxStaleness, n), n, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error { return s.read(ctx, cl, key(rng), true) }
		}})
	}
	return ws
}

func run(c config, log *slog.Logger, out io.Writer) error {
	dir, err := os.MkdirTemp("", "benchkv-")
	if err != nil {
		return err
	}
	if c.keepDir {
		log.Info("keeping data and logs", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if c.profileDir != "" {
		if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
			return fmt.Errorf("profile dir: %w", err)
		}
	}
	log.Info("starting 3 penny aggregators and 3 etcd members", "dir", dir)
	p, err := startPenny(c, dir)
	if err != nil {
		return fmt.Errorf("penny: %w", err)
	}
	defer p.close()
	e, err := startEtcd(c, dir)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer e.close()

	// Load the key space so reads hit existing keys.
	value := benchValue(c)
	names := keyNames(c.keys)
	for _, s := range []system{p, e} {
		for i := 0; i < c.keys; i += c.preloadBatch {
			keys := names[i:min(i+c.preloadBatch, c.keys)]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.batch(ctx, 0, keys, value)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: preload: %w", s.name(), err)
			}
		}
	}

	rs := results{}
	fmt.Fprintf(out, "| workload | system | ops/s | p50 | p99 | errors | server CPU/op | client CPU/op | cores: own / other |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range workloads(c) {
		if !strings.Contains(w.name, c.only) {
			continue
		}
		log.Info("running", "workload", w.name, "rounds", c.rounds)
		systems := []system{p, e}
		for _, s := range systems {
			drive(c.duration/10, w.clients, w.op(s)) // warm up
		}
		// The systems take turns, in alternating order (penny, etcd, etcd,
		// penny, ...), so that both meet the same interference from
		// anything else on the machine.
		sum := map[string]*result{}
		for round := range c.rounds {
			for i := range systems {
				s := systems[i]
				if round%2 == 1 {
					s = systems[len(systems)-1-i]
				}
				r, err := measure(c, w, s, round)
				if err != nil {
					return err
				}
				if sum[s.name()] == nil {
					sum[s.name()] = &result{}
				}
				sum[s.name()].add(r)
			}
		}
		for _, s := range systems {
			r := sum[s.name()]
			r.finish()
			rs.add(w.key, s.name(), *r)
			own, other := r.cores()
			fmt.Fprintf(out, "| %s | %s | %.0f | %s | %s | %d | %.0fµs | %.0fµs | %.2f / %.2f |\n", w.name, s.name(),
				r.opsPerSec(), fmtDur(r.p50), fmtDur(r.p99), r.errs, r.cpuPerOp(r.serverCPU), r.cpuPerOp(r.clientCPU), own, other)
		}
	}
	if ts := targets(rs, c.boundedClients); len(ts) > 0 {
		fmt.Fprintf(out, "\n| target | this run | result |\n|---|---|---|\n")
		for _, t := range ts {
			fmt.Fprintf(out, "| %s | %s | %s |\n", t.name, t.measured, t.verdict)
		}
	}
	return nil
}

// measure runs one round of w on s (the configured duration over the
// rounds) and records the CPU time of s's servers, of this process and of
// the machine meanwhile (and a CPU profile of this process with
// --cpuprofile-dir).
func measure(c config, w workload, s system, round int) (result, error) {
	if c.profileDir != "" {
		f, err := os.Create(filepath.Join(c.profileDir, fmt.Sprintf("benchkv-%s-%s-r%d.pprof", w.key, s.name(), round)))
		if err != nil {
			return result{}, fmt.Errorf("client profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, fmt.Errorf("client profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	srv0, err := procCPU(s.pids())
	if err != nil {
		return result{}, err
	}
	busy0, err := machineBusy()
	if err != nil {
		return result{}, err
	}
	cli0 := selfCPU()
	r := drive(c.duration/time.Duration(c.rounds), w.clients, w.op(s))
	r.clientCPU = selfCPU() - cli0
	busy1, err := machineBusy()
	if err != nil {
		return result{}, err
	}
	r.busy = busy1 - busy0
	srv1, err := procCPU(s.pids())
	if err != nil {
		return result{}, err
	}
	r.serverCPU = srv1 - srv0
	return r, nil
}
