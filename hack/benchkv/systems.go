package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

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

// startProc starts bin with args, its output in dir/name.log and env added
// to this process's environment.
func startProc(dir, name string, env []string, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
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

// startCluster starts three members of bin, member i (1 to 3) as
// name+i (its output in dir), with the arguments and environment
// member(i, client, peer, cluster) returns: client and peer are free
// addresses (host:port), cluster is --initial-cluster, the members named
// id+i. It returns the processes and the client addresses; if one fails to
// start, those started are stopped.
func startCluster(dir, name, id, bin string, member func(i int, client, peer, cluster string) (args, env []string)) ([]*proc, []string, error) {
	var clients, peers, ic []string
	for i := 1; i <= 3; i++ {
		c, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		p, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		clients, peers = append(clients, c), append(peers, p)
		ic = append(ic, fmt.Sprintf("%s%d=http://%s", id, i, p))
	}
	var procs []*proc
	for i := 1; i <= 3; i++ {
		args, env := member(i, clients[i-1], peers[i-1], strings.Join(ic, ","))
		p, err := startProc(dir, fmt.Sprint(name, i), env, bin, args...)
		if err != nil {
			for _, p := range procs {
				p.stop()
			}
			return nil, nil, err
		}
		procs = append(procs, p)
	}
	return procs, clients, nil
}

func pids(ps []*proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.cmd.Process.Pid
	}
	return out
}

// system is one cluster under test.
type system interface {
	name() string
	put(ctx context.Context, client int, key string, value []byte) error
	batch(ctx context.Context, client int, keys []string, value []byte) error
	// read uses the strong level (linearizable) or the weak one (Penny
	// bounded, etcd serializable), on member client%3.
	read(ctx context.Context, client int, key string, weak bool) error
	// pids are the server processes, for their CPU time.
	pids() []int
	close()
}

type pennySystem struct {
	procs   []*proc
	leader  *kvhttp.Client
	members []*kvhttp.Client
	weak    kvraft.ReadOptions
}

// Protocols Penny's clients may speak.
const (
	protoHTTP1 = "http1"
	protoH2C   = "h2c"
)

// newHTTPClient is the client of every Penny member: HTTP/1.1 with
// keep-alive (one connection per concurrent request), or HTTP/2 without
// TLS by prior knowledge (h2c; requests multiplexed over one connection per
// member), which penny aggregator serves on its plain listener as it
// serves HTTP/2 over TLS. It asks for no compression: the API never
// compresses, and Go's transport would otherwise add Accept-Encoding to
// every request.
func newHTTPClient(proto string) *http.Client {
	t := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute, DisableCompression: true}
	if proto == protoH2C {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: t}
}

func startPenny(c config, dir string) (*pennySystem, error) {
	procs, apis, err := startCluster(dir, "penny", "", c.penny, func(i int, api, peer, cluster string) (args, env []string) {
		if c.profileDir != "" {
			env = append(env, "PENNY_CPUPROFILE="+filepath.Join(c.profileDir, fmt.Sprintf("penny%d.pprof", i)))
		}
		return append([]string{"aggregator", "--id", fmt.Sprint(i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("penny%d", i)), "--listen", api,
			"--peer-listen", peer, "--initial-cluster", cluster}, strings.Fields(c.pennyFlags)...), env
	})
	if err != nil {
		return nil, err
	}
	s := &pennySystem{procs: procs, weak: kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: c.maxStaleness}}
	hc := newHTTPClient(c.pennyProto)
	for _, a := range apis {
		s.members = append(s.members, &kvhttp.Client{Endpoint: "http://" + a, HTTP: hc})
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
	slog.Info("penny cluster up", "apis", apis, "leader", s.leader.Endpoint, "protocol", c.pennyProto)
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
func (s *pennySystem) pids() []int { return pids(s.procs) }
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
	procs, clients, err := startCluster(dir, "etcd", "e", c.etcd, func(i int, client, peer, cluster string) ([]string, []string) {
		client, peer = "http://"+client, "http://"+peer
		return append([]string{"--name", fmt.Sprintf("e%d", i),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("etcd%d", i)),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", cluster, "--initial-cluster-state", "new",
			"--initial-cluster-token", "benchkv", "--max-txn-ops", fmt.Sprint(max(c.batchSize, c.preloadBatch)),
			"--log-level", "warn", "--logger", "zap"}, strings.Fields(c.etcdFlags)...), nil
	})
	if err != nil {
		return nil, err
	}
	s := &etcdSystem{procs: procs}
	for i, a := range clients {
		clients[i] = "http://" + a
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
	slog.Info("etcd cluster up", "clients", clients)
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
func (s *etcdSystem) pids() []int { return pids(s.procs) }
func (s *etcdSystem) close() {
	for _, c := range append(s.leader, s.members...) {
		c.Close()
	}
	for _, p := range s.procs {
		p.stop()
	}
}
