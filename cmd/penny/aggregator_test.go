package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"

	"github.com/pennyhq/penny/aggregator/custommetrics/custommetricstest"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/freeport"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

func TestAggregatorFlags(t *testing.T) {
	valid := []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://127.0.0.1:1"}
	with := func(extra ...string) []string { return append(slices.Clone(valid), extra...) }
	tests := []struct {
		name string
		args []string
		want string // substring of the error; empty means valid
	}{
		{"valid", valid, ""},
		{"values after =", []string{"--id=1", "--data-dir=d", "--initial-cluster=1=http://127.0.0.1:1", "--join=true"}, ""},
		{"missing id", []string{"--data-dir", "d", "--initial-cluster", "1=http://127.0.0.1:1"}, "--id is required"},
		{"missing dir", []string{"--id", "1", "--initial-cluster", "1=http://127.0.0.1:1"}, "--data-dir is required"},
		{"self not in cluster", []string{"--id", "2", "--data-dir", "d", "--initial-cluster", "1=http://127.0.0.1:1"}, "no entry for --id 2"},
		{"bad cluster", []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=127.0.0.1:1"}, "--initial-cluster"},
		{"bad listen", []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://a:1", "--listen", "nope"}, "--listen"},
		{"half tls", []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://a:1", "--peer-cert-file", "c"}, "go together"},
		{"extra args", []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://a:1", "x"}, `unexpected argument "x"`},
		{"unknown flag", with("--frobnicate"), "unknown flag: --frobnicate"},
		{"agent CA", with("--cert-file", "c", "--key-file", "k", "--api-client-ca-file", "ca"), ""},
		{"agent CA without a certificate", with("--api-client-ca-file", "ca"), "--api-client-ca-file needs --cert-file"},
		{"the old agent CA flag", with("--client-ca-file", "ca"), "the CA of agent certificates is --api-client-ca-file"},
		{"custom metrics", with("--custom-metrics", "--secure-port", "7443", "--lister-kubeconfig", "k",
			"--authentication-kubeconfig", "k", "--authorization-kubeconfig", "k", "--custom-metrics-window=1m"), ""},
		{"custom metrics with client certificates", with("--custom-metrics", "--client-ca-file", "ca"), ""},
		{"standard flags need custom metrics", with("--secure-port", "7443", "--audit-log-path", "-"),
			"--audit-log-path, --secure-port set the custom metrics API, which is off without --custom-metrics"},
		{"window too long", with("--custom-metrics", "--custom-metrics-window", "5m"), "--custom-metrics-window 5m0s"},
		{"no window", with("--custom-metrics", "--custom-metrics-window", "0s"), "--custom-metrics-window 0s"},
		{"no staleness", with("--custom-metrics", "--custom-metrics-max-staleness", "0s"), "--custom-metrics-max-staleness"},
		{"no max age", with("--custom-metrics", "--custom-metrics-max-age", "0s"), "--custom-metrics-max-age"},
		{"bad secure port", with("--custom-metrics", "--secure-port", "70000"), "secure-port"},
		{"id and id from hostname", with("--id-from-hostname"), "exclude each other"},
		{"store quota", with("--quota-bytes", "1048576"), ""},
		{"no store quota", with("--quota-bytes=-1"), ""},
		{"zero store quota", with("--quota-bytes", "0"), "--quota-bytes must be positive"},
		{"old files kept", with("--max-snapshots", "5", "--max-wals", "5"), ""},
		{"no old snapshot kept", with("--max-snapshots", "0"), "--max-snapshots, --max-wals"},
		{"no old WAL kept", with("--max-wals", "0"), "--max-snapshots, --max-wals"},
		{"in-flight bytes", with("--max-inflight-bytes", "33554432"), ""},
		{"in-flight bytes below a message", with("--max-inflight-bytes", "65536"), "--max-inflight-bytes must be at least 1 MiB"},
		{"force new cluster", with("--force-new-cluster"), ""},
		{"force new cluster and join", with("--force-new-cluster", "--join"), "--force-new-cluster and --join exclude each other"},
		{"cost settings", with("--cost-cluster-name", "prod-eu", "--cost-tenant-label=example.com/team"), ""},
		{"cluster name with a slash", with("--cost-cluster-name", "prod/eu"), "--cost-cluster-name, --cost-tenant-label: allocation: cost: cluster \"prod/eu\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAggregatorFlags(tt.args, &bytes.Buffer{})
			if tt.want == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if err != nil && !errors.Is(err, errUsage) {
				t.Fatalf("%v is not a usage error (exit status 2)", err)
			}
		})
	}
}

func TestIDFromHostname(t *testing.T) {
	tests := []struct {
		host string
		want uint64 // 0: an error
	}{
		{"penny-aggregator-0", 1},
		{"penny-aggregator-2", 3},
		{"agg-65534", 65535},
		{"agg-65535", 0},
		{"penny", 0},
		{"penny-aggregator-x", 0},
		{"penny-aggregator-", 0},
	}
	for _, tt := range tests {
		got, err := idFromHostname(tt.host)
		if got != tt.want || (err != nil) != (tt.want == 0) {
			t.Errorf("idFromHostname(%q) = %d, %v; want %d", tt.host, got, err, tt.want)
		}
	}
}

func TestAggregatorFlagValues(t *testing.T) {
	c, err := parseAggregatorFlags([]string{"--id=3", "--data-dir", "d", "--initial-cluster", "3=http://a:1",
		"--custom-metrics", "--custom-metrics-max-staleness=500ms", "--cert-file", "c", "--key-file=k", "--api-client-ca-file", "ca"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != 3 || !c.CustomMetrics || c.CustomMetricsWindow != 30*time.Second || c.CustomMetricsMaxStaleness != 500*time.Millisecond ||
		c.APITLS.CAFile != "ca" || c.APITLS.KeyFile != "k" || c.APIURL != "https://127.0.0.1:7379" ||
		c.CostCluster != "cluster-one" || c.CostTenantLabel != "cost.tenant-id" {
		t.Fatalf("parsed %+v", c)
	}
}

// TestAggregatorHelp checks that help exits cleanly and groups the
// standard flags of the custom metrics API apart from Penny's.
func TestAggregatorHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out bytes.Buffer
		if _, err := parseAggregatorFlags([]string{arg}, &out); !errors.Is(err, pflag.ErrHelp) {
			t.Fatalf("%s: %v, want pflag.ErrHelp", arg, err)
		}
		help := out.String()
		var last int
		for _, want := range []string{"--api-client-ca-file", "--custom-metrics-window", "Custom metrics API",
			"Secure serving:", "(default 6443)", "Delegated authentication", "--client-ca-file", "Delegated authorization",
			"Audit:", "Kubernetes API client:", "--lister-kubeconfig"} {
			i := strings.Index(help[last:], want)
			if i < 0 {
				t.Fatalf("%s: help lacks %q after offset %d:\n%s", arg, want, last, help)
			}
			last += i
		}
	}
}

var (
	buildOnce sync.Once
	pennyBin  string
	buildErr  error
)

// buildPenny compiles the penny binary once per test process.
func buildPenny(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "penny-bin-")
		if err != nil {
			buildErr = err
			return
		}
		pennyBin = filepath.Join(dir, "penny")
		out, err := exec.Command("go", "build", "-o", pennyBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pennyBin
}

func TestMain(m *testing.M) {
	cgtest.MaybeHelper()
	code := m.Run()
	if pennyBin != "" {
		os.RemoveAll(filepath.Dir(pennyBin))
	}
	os.Exit(code)
}

// replica is one `penny aggregator` process.
type replica struct {
	id      uint64
	args    []string
	dir     string
	api     string
	logPath string
	cmd     *exec.Cmd
	exited  chan error
}

type procCluster struct {
	t        *testing.T
	bin      string
	base     string
	ic       []string
	replicas []*replica
}

func newProcCluster(t *testing.T, size int, extra ...string) *procCluster {
	t.Helper()
	return newProcClusterEach(t, size, nil, extra...)
}

// newProcClusterEach is newProcCluster with flags of each replica's own
// too: each(id), when each is not nil.
func newProcClusterEach(t *testing.T, size int, each func(id int) []string, extra ...string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: buildPenny(t), base: t.TempDir()}
	base := c.base
	var ic []string
	for i := 1; i <= size; i++ {
		r := &replica{id: uint64(i), dir: filepath.Join(base, fmt.Sprint(i)), api: freeport.T(t),
			logPath: filepath.Join(base, fmt.Sprintf("%d.log", i))}
		peer := freeport.T(t)
		ic = append(ic, fmt.Sprintf("%d=http://%s", i, peer))
		r.args = append([]string{"aggregator", "--id", fmt.Sprint(i), "--data-dir", r.dir, "--listen", r.api,
			"--peer-listen", peer, "--tick", "20ms", "--election-ticks", "10"}, extra...)
		if each != nil {
			r.args = append(r.args, each(i)...)
		}
		c.replicas = append(c.replicas, r)
	}
	c.ic = ic
	for _, r := range c.replicas {
		r.args = append(r.args, "--initial-cluster", strings.Join(ic, ","))
		c.start(r)
	}
	t.Cleanup(func() {
		for _, r := range c.replicas {
			c.kill(r)
		}
		if t.Failed() {
			for _, r := range c.replicas {
				b, _ := os.ReadFile(r.logPath)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("last log lines of replica %d:\n%s", r.id, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
		}
	})
	return c
}

func (c *procCluster) start(r *replica) {
	c.t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	r.cmd = exec.Command(c.bin, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	r.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, ch chan error) {
		ch <- cmd.Wait()
		logf.Close()
	}(r.cmd, r.exited)
}

func (c *procCluster) running(r *replica) bool {
	if r.cmd == nil {
		return false
	}
	select {
	case err := <-r.exited:
		r.exited <- err
		return false
	default:
		return true
	}
}

func (c *procCluster) kill(r *replica) {
	if c.running(r) {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
	}
	r.cmd = nil
}

func client(r *replica) *kvhttp.Client {
	return &kvhttp.Client{Endpoint: "http://" + r.api, HTTP: &http.Client{Timeout: 3 * time.Second}}
}

func (c *procCluster) waitHealthy(rs ...*replica) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range rs {
		if err := client(r).WaitHealthy(ctx); err != nil {
			c.t.Fatalf("replica %d: %v", r.id, err)
		}
	}
}

func (c *procCluster) leader() *replica {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range c.replicas {
			if !c.running(r) {
				continue
			}
			st, err := client(r).Cluster(context.Background())
			if err != nil || st.Leader == 0 {
				continue
			}
			for _, l := range c.replicas {
				if l.id == st.Leader && c.running(l) {
					return l
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return nil
}

// load writes unique keys from several clients spread over the running
// replicas until stop is closed, and returns the acknowledged writes.
func (c *procCluster) load(prefix string, clients int, stop <-chan struct{}) func() map[string]string {
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := c.replicas[(g+i)%len(c.replicas)]
				if !c.running(r) {
					continue
				}
				k, v := fmt.Sprintf("%s/%d/%06d", prefix, g, i), fmt.Sprintf("value-%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := client(r).Put(ctx, []byte(k), []byte(v))
				cancel()
				if err == nil {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		})
	}
	return func() map[string]string {
		wg.Wait()
		return acked
	}
}

// checkAcked verifies every acknowledged write on replica r.
func (c *procCluster) checkAcked(r *replica, prefix string, acked map[string]string, opts kvraft.ReadOptions) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := map[string]string{}
	res, err := client(r).RangeAll(ctx, []byte(prefix+"/"), opts)
	if err != nil {
		c.t.Fatalf("range on replica %d: %v", r.id, err)
	}
	for _, it := range res.Items {
		got[it.Key] = string(it.Value)
	}
	missing := 0
	for k, v := range acked {
		if got[k] != v {
			missing++
			if missing < 5 {
				c.t.Errorf("replica %d: acknowledged %s=%s reads %q", r.id, k, v, got[k])
			}
		}
	}
	if missing > 0 {
		c.t.Fatalf("replica %d lost %d of %d acknowledged writes", r.id, missing, len(acked))
	}
}

func (c *procCluster) waitCaughtUp(r *replica, from *replica) {
	c.t.Helper()
	st, err := client(from).Cluster(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got, err := client(r).Cluster(context.Background())
		if err == nil && got.AppliedIndex >= st.CommitIndex {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("replica %d did not catch up to index %d", r.id, st.CommitIndex)
}

// TestAggregatorProcesses runs three `penny aggregator` processes, SIGKILLs
// the leader under write load, checks every acknowledged write on every
// replica, restarts the killed one, then makes a follower fall far behind
// the compacted log so it can only catch up through a snapshot.
func TestAggregatorProcesses(t *testing.T) {
	c := newProcCluster(t, 3, "--snapshot-count", "300", "--snapshot-catch-up-entries", "50")
	c.waitHealthy(c.replicas...)

	stop := make(chan struct{})
	wait := c.load("w", 8, stop)
	time.Sleep(time.Second)
	lead := c.leader()
	t.Logf("SIGKILL leader %d under load", lead.id)
	c.kill(lead)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	acked := wait()
	if len(acked) < 100 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	t.Logf("%d writes acknowledged", len(acked))
	for _, r := range c.replicas {
		if c.running(r) {
			c.checkAcked(r, "w", acked, kvraft.ReadOptions{Consistency: kvraft.Linearizable})
		}
	}

	// The killed replica restarts from its data dir and catches up.
	c.start(lead)
	c.waitHealthy(lead)
	c.waitCaughtUp(lead, c.leader())
	c.checkAcked(lead, "w", acked, kvraft.ReadOptions{Consistency: kvraft.Eventual})

	// A follower falls far behind: the others write and compact past it.
	newLead := c.leader()
	var lag *replica
	for _, r := range c.replicas {
		if r != newLead {
			lag = r
			break
		}
	}
	c.kill(lag)
	before, err := client(newLead).Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Far more than --snapshot-count plus --snapshot-catch-up-entries.
	target := before.AppliedIndex + 1000
	stop = make(chan struct{})
	wait = c.load("f", 8, stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := client(newLead).Cluster(context.Background())
		if err == nil && st.AppliedIndex > target {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not reach index %d: %+v %v", target, st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	acked2 := wait()
	c.start(lag)
	c.waitHealthy(lag)
	c.waitCaughtUp(lag, c.leader())
	c.checkAcked(lag, "f", acked2, kvraft.ReadOptions{Consistency: kvraft.Eventual})
	c.checkAcked(lag, "w", acked, kvraft.ReadOptions{Consistency: kvraft.Eventual})
	logs, _ := os.ReadFile(lag.logPath)
	if !bytes.Contains(logs, []byte("installed snapshot from leader")) {
		t.Fatalf("replica %d caught up without installing a snapshot", lag.id)
	}

	// SIGTERM shuts every replica down cleanly.
	for _, r := range c.replicas {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range c.replicas {
		select {
		case err := <-r.exited:
			if err != nil {
				t.Fatalf("replica %d exited with %v after SIGTERM", r.id, err)
			}
			r.exited <- err
		case <-time.After(15 * time.Second):
			t.Fatalf("replica %d did not exit after SIGTERM", r.id)
		}
	}
}

// TestAggregatorRefusesCorruptWAL damages a stopped replica's WAL: the
// replica must refuse to start, saying why, rather than serve bad data.
func TestAggregatorRefusesCorruptWAL(t *testing.T) {
	c := newProcCluster(t, 1)
	r := c.replicas[0]
	c.waitHealthy(r)
	for i := range 50 {
		if _, err := client(r).Put(context.Background(), fmt.Appendf(nil, "k%d", i), []byte("PAYLOAD-MARKER-"+strings.Repeat("x", 64))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-r.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	r.cmd = nil
	names, _ := filepath.Glob(filepath.Join(r.dir, "wal", "*.wal"))
	if len(names) == 0 {
		t.Fatal("no wal file")
	}
	wal := names[len(names)-1]
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("PAYLOAD-MARKER"))
	if i < 0 {
		t.Fatal("payload not found in wal")
	}
	b[i+3] ^= 0x20
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c.start(r)
	select {
	case err := <-r.exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("replica with a corrupt WAL exited with %v, want a failure", err)
		}
		r.exited <- err
	case <-time.After(15 * time.Second):
		t.Fatal("replica with a corrupt WAL kept running")
	}
	logs, _ := os.ReadFile(r.logPath)
	if !bytes.Contains(logs, []byte("refusing to start")) {
		t.Fatalf("no clear log line about the corrupt WAL:\n%s", logs)
	}
}

// TestAggregatorMembership adds a fourth process at runtime through a
// follower's API, starts it with --join, checks it serves reads, then
// removes it: the removed process exits cleanly.
func TestAggregatorMembership(t *testing.T) {
	c := newProcCluster(t, 3)
	c.waitHealthy(c.replicas...)
	lead := c.leader()
	var follower *replica
	for _, r := range c.replicas {
		if r != lead {
			follower = r
			break
		}
	}
	idx, err := client(follower).Put(context.Background(), []byte("before"), []byte("join"))
	if err != nil {
		t.Fatal(err)
	}
	peer := freeport.T(t)
	r4 := &replica{id: 4, dir: filepath.Join(c.base, "4"), api: freeport.T(t), logPath: filepath.Join(c.base, "4.log")}
	if _, err := client(follower).AddMember(context.Background(), kvraft.Member{ID: 4, PeerURL: "http://" + peer}); err != nil {
		t.Fatalf("add member: %v", err)
	}
	r4.args = []string{"aggregator", "--id", "4", "--data-dir", r4.dir, "--listen", r4.api, "--peer-listen", peer,
		"--tick", "20ms", "--join", "--initial-cluster", strings.Join(append(c.ic, "4=http://"+peer), ",")}
	c.replicas = append(c.replicas, r4)
	c.start(r4)
	c.waitHealthy(r4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client(r4).Get(ctx, []byte("before"), kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: idx})
	if err != nil || string(res.Value) != "join" {
		t.Fatalf("read on the joined member: %+v, %v", res, err)
	}
	st, err := client(lead).Cluster(ctx)
	if err != nil || len(st.Members) != 4 {
		t.Fatalf("cluster after join: %+v, %v", st, err)
	}
	if _, err := client(lead).RemoveMember(ctx, 4); err != nil {
		t.Fatalf("remove member: %v", err)
	}
	select {
	case err := <-r4.exited:
		if err != nil {
			t.Fatalf("removed member exited with %v", err)
		}
		r4.exited <- err
	case <-time.After(15 * time.Second):
		t.Fatal("removed member kept running")
	}
	if _, err := client(lead).Put(ctx, []byte("after"), []byte("remove")); err != nil {
		t.Fatalf("write after removal: %v", err)
	}
}

// TestAggregatorCustomMetrics runs `penny aggregator --custom-metrics`
// with delegated authentication and authorization pointing at a stand-in
// for kube-apiserver's TokenReview and SubjectAccessReview (the end-to-end
// tests run the real kube-apiserver), stores pods through the KV API as
// the ingest would, and reads them over HTTPS as the HPA does. The
// replica's /metrics then shows both freshness histograms, and SIGTERM
// stops the process cleanly.
func TestAggregatorCustomMetrics(t *testing.T) {
	kube := custommetricstest.StartKubeAPI(t)
	kube.AddUser("hpa-token", "system:serviceaccount:kube-system:horizontal-pod-autoscaler", true)
	_, port, err := net.SplitHostPort(freeport.T(t))
	if err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(t, 1, append([]string{"--custom-metrics", "--secure-port", port, "--bind-address", "127.0.0.1"},
		kube.Args()...)...)
	r := c.replicas[0]
	c.waitHealthy(r)
	base := time.Now().Truncate(time.Second).Add(-time.Minute)
	querytest.Write(t, client(r), base)

	// The adapter serves a self-signed certificate it made in memory.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	read := func(path string) (*cmv1beta1.MetricValueList, error) {
		req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+port+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer hpa-token")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", resp.Status, body)
		}
		var l cmv1beta1.MetricValueList
		return &l, json.Unmarshal(body, &l)
	}
	tests := []struct {
		path string
		want int64
	}{
		{"/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/web-1/memory_rss_bytes", 110 * querytest.MiB},
		{"/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/*/memory_rss_bytes?labelSelector=app%3Dweb&metricLabelSelector=container%3Dapp",
			300 * querytest.MiB},
		{"/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/metrics/net_rx_bytes_per_second", 8000},
	}
	for _, tt := range tests {
		eventually(t, tt.path, 30*time.Second, func() error {
			l, err := read(tt.path)
			if err != nil {
				return err
			}
			var sum int64
			for _, v := range l.Items {
				sum += v.Value.Value()
			}
			if len(l.Items) == 0 || sum != tt.want {
				return fmt.Errorf("values %+v sum to %d, want %d", l.Items, sum, tt.want)
			}
			return nil
		})
	}

	resp, err := http.Get("http://" + r.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s %v", resp.Status, err)
	}
	for _, name := range []string{"penny_custom_metrics_freshness_seconds", "metrics_apiserver_metric_freshness_seconds"} {
		var n uint64
		if mf, ok := mfs[name]; ok {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
		if n == 0 {
			t.Errorf("/metrics: %s has no observations", name)
		}
	}

	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		r.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// TestAggregatorCustomMetricsFailure checks that a custom metrics API that
// cannot start stops the replica too, saying why.
func TestAggregatorCustomMetricsFailure(t *testing.T) {
	_, port, err := net.SplitHostPort(freeport.T(t))
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	c := newProcCluster(t, 1, "--custom-metrics", "--secure-port", port, "--bind-address", "127.0.0.1",
		"--lister-kubeconfig", missing, "--authentication-kubeconfig", missing, "--authorization-kubeconfig", missing)
	r := c.replicas[0]
	select {
	case err := <-r.exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exited with %v, want exit status 1", err)
		}
		r.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatal("the replica kept running without its custom metrics API")
	}
	logs, _ := os.ReadFile(r.logPath)
	if !bytes.Contains(logs, []byte("penny aggregator: custom metrics api: ")) || !bytes.Contains(logs, []byte(missing)) {
		t.Fatalf("no clear error about the custom metrics API:\n%s", logs)
	}
}
