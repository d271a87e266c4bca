// Command benchkv compares a 3-member Penny kvraft cluster (`penny
// aggregator`) with a 3-member etcd cluster on loopback, both with fsync on,
// running the same workloads in the same run, and prints a table.
//
// It starts and stops both clusters itself:
//
//	go build -o _output/penny ./cmd/penny
//	go run ./hack/benchkv --penny _output/penny --etcd /usr/bin/etcd
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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

type config struct {
	penny, etcd   string
	duration      time.Duration
	keys          int
	valueSize     int
	batchSize     int
	batchClients  int
	readClients   int
	maxStaleness  time.Duration
	keepDir       bool
	putClients    []int
	only          string
	pennyFlags    string
	etcdGRPCConns int
}

func (c *config) Validate() error {
	var errs []error
	for name, p := range map[string]string{"--penny": c.penny, "--etcd": c.etcd} {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.duration <= 0 || c.keys <= 0 || c.valueSize <= 0 || c.batchSize <= 0 || c.batchClients <= 0 || c.readClients <= 0 || c.etcdGRPCConns <= 0 {
		errs = append(errs, errors.New("durations, sizes and client counts must be positive"))
	}
	return errors.Join(errs...)
}

func main() {
	var c config
	flag.StringVar(&c.penny, "penny", "_output/penny", "penny binary")
	flag.StringVar(&c.etcd, "etcd", "/usr/bin/etcd", "etcd binary (3.4 from Debian)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured time per workload and system")
	flag.IntVar(&c.keys, "keys", 10000, "key space of puts and reads")
	flag.IntVar(&c.valueSize, "value-size", 256, "value size in bytes")
	flag.IntVar(&c.batchSize, "batch-size", 1000, "keys per batched write")
	flag.IntVar(&c.batchClients, "batch-clients", 4, "concurrent batch writers")
	flag.IntVar(&c.readClients, "read-clients", 64, "concurrent readers")
	flag.IntVar(&c.etcdGRPCConns, "etcd-conns", 8, "gRPC connections the etcd clients share")
	flag.DurationVar(&c.maxStaleness, "max-staleness", 500*time.Millisecond, "staleness bound of Penny's bounded reads")
	flag.BoolVar(&c.keepDir, "keep", false, "keep the data and log directory")
	flag.StringVar(&c.pennyFlags, "penny-flags", "", "extra flags for every penny aggregator, space-separated")
	flag.StringVar(&c.only, "only", "", "run only the workloads whose name contains this")
	flag.Parse()
	c.putClients = []int{1, 16, 256}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := c.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "benchkv:", err)
		os.Exit(2)
	}
	if err := run(c, log, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchkv:", err)
		os.Exit(1)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(dir, name, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// system is one cluster under test.
type system interface {
	name() string
	put(ctx context.Context, client int, key string, value []byte) error
	batch(ctx context.Context, client int, keys []string, value []byte) error
	// read uses the strong level (linearizable) or the weak one (Penny
	// bounded, etcd serializable), on member client%3.
	read(ctx context.Context, client int, key string, weak bool) error
	close()
}

type pennySystem struct {
	procs   []*proc
	leader  *kvhttp.Client
	members []*kvhttp.Client
	weak    kvraft.ReadOptions
}

func newHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
}

func startPenny(c config, dir string) (*pennySystem, error) {
	s := &pennySystem{weak: kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: c.maxStaleness}}
	var ic, apis, peers []string
	for i := 1; i <= 3; i++ {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		apis, peers = append(apis, a), append(peers, p)
		ic = append(ic, fmt.Sprintf("%d=http://%s", i, p))
	}
	hc := newHTTPClient()
	for i := 1; i <= 3; i++ {
		args := append([]string{"aggregator", "--id", fmt.Sprint(i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("penny%d", i)), "--listen", apis[i-1],
			"--peer-listen", peers[i-1], "--initial-cluster", strings.Join(ic, ",")}, strings.Fields(c.pennyFlags)...)
		p, err := startProc(dir, fmt.Sprintf("penny%d", i), c.penny, args...)
		if err != nil {
			s.close()
			return nil, err
		}
		s.procs = append(s.procs, p)
		s.members = append(s.members, &kvhttp.Client{Endpoint: "http://" + apis[i-1], HTTP: hc})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range s.members {
		if err := m.WaitHealthy(ctx); err != nil {
			s.close()
			return nil, err
		}
	}
	st, err := s.members[0].Cluster(ctx)
	if err != nil {
		s.close()
		return nil, err
	}
	s.leader = s.members[st.Leader-1]
	slog.Info("penny cluster up", "apis", apis, "leader", s.leader.Endpoint)
	return s, nil
}

func (s *pennySystem) name() string { return "penny" }
func (s *pennySystem) put(ctx context.Context, _ int, key string, value []byte) error {
	_, err := s.leader.Put(ctx, []byte(key), value)
	return err
}
func (s *pennySystem) batch(ctx context.Context, _ int, keys []string, value []byte) error {
	ops := make([]kvraft.Op, len(keys))
	for i, k := range keys {
		ops[i] = kvraft.Op{Type: kvraft.OpPut, Key: []byte(k), Value: value}
	}
	_, err := s.leader.Batch(ctx, ops)
	return err
}
func (s *pennySystem) read(ctx context.Context, client int, key string, weak bool) error {
	opts := kvraft.ReadOptions{}
	if weak {
		opts = s.weak
	}
	_, err := s.members[client%3].Get(ctx, []byte(key), opts)
	return err
}
func (s *pennySystem) close() {
	for _, p := range s.procs {
		p.stop()
	}
}

type etcdSystem struct {
	procs   []*proc
	leader  []*clientv3.Client // per gRPC connection, to the leader
	members []*clientv3.Client // one per member
}

func startEtcd(c config, dir string) (*etcdSystem, error) {
	s := &etcdSystem{}
	var ic, clients, peers []string
	for i := 1; i <= 3; i++ {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		clients, peers = append(clients, "http://"+a), append(peers, "http://"+p)
		ic = append(ic, fmt.Sprintf("e%d=http://%s", i, p))
	}
	for i := 1; i <= 3; i++ {
		p, err := startProc(dir, fmt.Sprintf("etcd%d", i), c.etcd, "--name", fmt.Sprintf("e%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("etcd%d", i)),
			"--listen-client-urls", clients[i-1], "--advertise-client-urls", clients[i-1],
			"--listen-peer-urls", peers[i-1], "--initial-advertise-peer-urls", peers[i-1],
			"--initial-cluster", strings.Join(ic, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "benchkv", "--max-txn-ops", fmt.Sprint(c.batchSize),
			"--log-level", "warn", "--logger", "zap")
		if err != nil {
			s.close()
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	for _, u := range clients {
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: 5 * time.Second,
			Logger: zap.NewNop(), MaxCallSendMsgSize: 16 << 20})
		if err != nil {
			s.close()
			return nil, err
		}
		s.members = append(s.members, cl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var leaderURL string
	for leaderURL == "" {
		for i, cl := range s.members {
			st, err := cl.Status(ctx, clients[i])
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				leaderURL = clients[i]
			}
		}
		if ctx.Err() != nil {
			s.close()
			return nil, fmt.Errorf("etcd: no leader: %w", ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range c.etcdGRPCConns {
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{leaderURL}, DialTimeout: 5 * time.Second,
			Logger: zap.NewNop(), MaxCallSendMsgSize: 16 << 20})
		if err != nil {
			s.close()
			return nil, err
		}
		s.leader = append(s.leader, cl)
	}
	return s, nil
}

func (s *etcdSystem) name() string { return "etcd" }
func (s *etcdSystem) put(ctx context.Context, client int, key string, value []byte) error {
	_, err := s.leader[client%len(s.leader)].Put(ctx, key, string(value))
	return err
}
func (s *etcdSystem) batch(ctx context.Context, client int, keys []string, value []byte) error {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpPut(k, string(value))
	}
	_, err := s.leader[client%len(s.leader)].Txn(ctx).Then(ops...).Commit()
	return err
}
func (s *etcdSystem) read(ctx context.Context, client int, key string, weak bool) error {
	var opts []clientv3.OpOption
	if weak {
		opts = append(opts, clientv3.WithSerializable())
	}
	_, err := s.members[client%3].Get(ctx, key, opts...)
	return err
}
func (s *etcdSystem) close() {
	for _, c := range append(s.leader, s.members...) {
		c.Close()
	}
	for _, p := range s.procs {
		p.stop()
	}
}

// result of one workload on one system.
type result struct {
	ops      int
	errs     int
	elapsed  time.Duration
	p50, p99 time.Duration
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
			rng := rand.New(rand.NewPCG(uint64(cl), 42))
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
	r := result{ops: len(lat), errs: errs, elapsed: time.Since(start)}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50 = lat[len(lat)*50/100]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

type workload struct {
	name    string
	clients int
	op      func(s system) func(ctx context.Context, client int, rng *rand.Rand) error
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

	value := make([]byte, c.valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	key := func(rng *rand.Rand) string { return fmt.Sprintf("bench/%08d", rng.IntN(c.keys)) }
	var workloads []workload
	for _, n := range c.putClients {
		workloads = append(workloads, workload{fmt.Sprintf("put, %d client(s)", n), n, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error { return s.put(ctx, cl, key(rng), value) }
		}})
	}
	workloads = append(workloads,
		workload{fmt.Sprintf("batch of %d puts, %d clients", c.batchSize, c.batchClients), c.batchClients, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error {
				// Distinct keys: etcd rejects a transaction that puts a key twice.
				keys := make([]string, c.batchSize)
				first := rng.IntN(c.keys)
				for i := range keys {
					keys[i] = fmt.Sprintf("bench/%08d", (first+i)%c.keys)
				}
				return s.batch(ctx, cl, keys, value)
			}
		}},
		workload{fmt.Sprintf("linearizable get, %d clients", c.readClients), c.readClients, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error { return s.read(ctx, cl, key(rng), false) }
		}},
		workload{fmt.Sprintf("bounded %v (penny) / serializable (etcd) get, %d clients", c.maxStaleness, c.readClients), c.readClients, func(s system) func(context.Context, int, *rand.Rand) error {
			return func(ctx context.Context, cl int, rng *rand.Rand) error { return s.read(ctx, cl, key(rng), true) }
		}},
	)

	// Load the key space so reads hit existing keys.
	for _, s := range []system{p, e} {
		for i := 0; i < c.keys; i += c.batchSize {
			keys := make([]string, 0, c.batchSize)
			for j := i; j < min(i+c.batchSize, c.keys); j++ {
				keys = append(keys, fmt.Sprintf("bench/%08d", j))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.batch(ctx, 0, keys, value)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: preload: %w", s.name(), err)
			}
		}
	}

	fmt.Fprintf(out, "| workload | system | ops/s | p50 | p99 | errors |\n|---|---|---:|---:|---:|---:|\n")
	for _, w := range workloads {
		if !strings.Contains(w.name, c.only) {
			continue
		}
		for _, s := range []system{p, e} {
			log.Info("running", "workload", w.name, "system", s.name())
			drive(c.duration/10, w.clients, w.op(s)) // warm up
			r := drive(c.duration, w.clients, w.op(s))
			fmt.Fprintf(out, "| %s | %s | %.0f | %s | %s | %d |\n", w.name, s.name(),
				float64(r.ops)/r.elapsed.Seconds(), fmtDur(r.p50), fmtDur(r.p99), r.errs)
		}
	}
	return nil
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
