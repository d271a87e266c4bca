// Command benchcost measures the cost allocation on this machine
// (`make bench-cost`; docs/cost.md has the table and how to read it):
//
//  1. Seven days of history for 5,000 pods on one aggregator replica, and
//     the time GET /v1/allocation takes over it. Simulated nodes (the load
//     generator's, with pod metadata) stream through the real ingest and
//     the leader rolls their minutes up for a few real minutes; the week
//     before those minutes cannot be simulated in real time, so its hour
//     records are written in the store's format (history.Record) for the
//     same containers (the roller's identities and refs), at the rates each
//     container had in the real minutes, varied hour by hour: every
//     container of every node that had a whole minute (60 s, observed) gets
//     its hours. Then window=7d with aggregate=namespace and aggregate=pod,
//     p50 and p99, first while the load generator keeps sending (it shares
//     the 2 cores), then with it stopped (idle: the target applies there);
//     what the replica allocated per query; and the store's bytes per
//     container per day once minutes are compacted (hour records per
//     container, identities per identity).
//  2. The ingest cost of the rollups: three replicas under make
//     bench-pipeline's sustained load with pod metadata, freshness measured
//     between two rolls and across rolls.
//
// It prints tables; it is a benchmark, not a test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pennyhq/penny/cmd/penny/loadgen"
	"github.com/pennyhq/penny/internal/freeport"
	"github.com/pennyhq/penny/internal/procstat"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// containersPerNode is a simulated node's cgroups: simnode's dozen systemd
// units, then pods of three containers (pause, app, sidecar): 30 pods.
const containersPerNode = 100

func main() {
	penny := flag.String("penny", "bin/penny", "the penny binary")
	pods := flag.Int("pods", 5000, "pods to simulate, about 30 per node")
	days := flag.Int("days", 7, "days of history")
	queries := flag.Int("queries", 40, "requests of each query, for the percentiles")
	ingestAgents := flag.Int("ingest-agents", 250, "agents of the ingest-cost runs (bench-pipeline's largest sustained load with pod metadata)")
	allocDir := flag.String("alloc-dir", "/dev/shm", "where the allocation run's replica keeps its WAL and snapshots: tmpfs by default, "+
		"as what it measures is the query, not the disk that other work on a shared machine also syncs to (the ingest runs use /var/tmp)")
	interval := flag.Duration("alloc-interval", time.Second, "the simulated agents' sampling interval in the allocation run "+
		"(bench-pipeline's is 1s; a machine shared with other work may need longer for the leader to keep up with its rolls)")
	rollWait := flag.Duration("roll-wait", 20*time.Minute, "how long to wait for three rolls of every node")
	skipIngest := flag.Bool("skip-ingest", false, "measure the allocation only")
	skipAllocation := flag.Bool("skip-allocation", false, "measure the ingest cost of the rollups only")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !*skipAllocation {
		nodes := (*pods + 29) / 30
		a, err := allocationBench(ctx, *penny, *allocDir, nodes, *days, *queries, *interval, *rollWait)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchcost:", err)
			os.Exit(1)
		}
		a.print()
	}
	if *skipIngest {
		return
	}
	in, err := ingestBench(ctx, *penny, *ingestAgents)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcost:", err)
		os.Exit(1)
	}
	printIngest(in, *ingestAgents)
}

// cluster is n penny aggregator processes on loopback.
type cluster struct {
	dir   string
	procs []*exec.Cmd
	urls  []string
}

func startCluster(ctx context.Context, penny, base string, n int, extra ...string) (*cluster, error) {
	dir, err := os.MkdirTemp(base, "penny-benchcost-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	var peers, apis []string
	for range n {
		api, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		peer, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		apis, peers = append(apis, api), append(peers, peer)
	}
	var ic []string
	for i, p := range peers {
		ic = append(ic, fmt.Sprintf("%d=http://%s", i+1, p))
	}
	token := fmt.Sprintf("benchcost-%d", time.Now().UnixNano())
	for i := range n {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d.log", i+1)))
		if err != nil {
			c.stop()
			return nil, err
		}
		args := append([]string{"aggregator", "--id", strconv.Itoa(i + 1), "--cluster-token", token,
			"--data-dir", filepath.Join(dir, strconv.Itoa(i+1)), "--listen", apis[i], "--peer-listen", peers[i],
			"--initial-cluster", strings.Join(ic, ",")}, extra...)
		cmd := exec.Command(penny, args...)
		if prof := os.Getenv("PENNY_CPUPROFILE"); prof != "" {
			// One profile per replica: <path>.<id>.
			cmd.Env = append(os.Environ(), fmt.Sprintf("PENNY_CPUPROFILE=%s.%d", prof, i+1))
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			c.stop()
			return nil, err
		}
		c.procs = append(c.procs, cmd)
		c.urls = append(c.urls, "http://"+apis[i])
	}
	for _, u := range c.urls {
		if err := waitHealthy(ctx, u); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		// SIGTERM first: a replica writes its CPU profile as it stops.
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Signal(syscall.SIGKILL)
			<-done
		}
	}
	os.RemoveAll(c.dir)
}

func (c *cluster) client(i int) *kvhttp.Client {
	return &kvhttp.Client{Endpoint: c.urls[i], HTTP: &http.Client{Timeout: time.Minute}}
}

// cpuSeconds sums the replicas' CPU time.
func (c *cluster) cpuSeconds() float64 {
	pids := make([]int, len(c.procs))
	for i, p := range c.procs {
		pids[i] = p.Process.Pid
	}
	return procstat.CPUSeconds(pids...)
}

// memory returns a replica's resident memory and its peak, in bytes.
func (c *cluster) memory(i int) (rss, peak int64) { return procstat.Memory(c.procs[i].Process.Pid) }

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New(url + " never became healthy")
}

// ingestRun is one measurement of the ingest: between rolls or across.
type ingestRun struct {
	what  string
	r     *loadgen.Result
	cpu   float64 // cores, the replicas together, over the measurement
	rolls int     // rolls of the leader in the measurement
}

// ingestBench runs the load twice on fresh clusters: measured from 8 s
// after a minute boundary for 50 s (the leader rolls 5 s after each
// boundary: no roll in it), then for 120 s (two rolls in it).
func ingestBench(ctx context.Context, penny string, agents int) ([]ingestRun, error) {
	var runs []ingestRun
	for _, m := range []struct {
		what     string
		duration time.Duration
		rolls    int
	}{{"between rolls", 50 * time.Second, 0}, {"across rolls", 120 * time.Second, 2}} {
		fmt.Fprintf(os.Stderr, "benchcost: ingest of %d agents x %d cgroups, %s\n", agents, containersPerNode, m.what)
		c, err := startCluster(ctx, penny, "/var/tmp", 3)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		from := now.Truncate(time.Minute).Add(time.Minute + 8*time.Second)
		if from.Sub(now) < 15*time.Second {
			from = from.Add(time.Minute)
		}
		cpu0 := make(chan float64, 1)
		go func() {
			time.Sleep(time.Until(from))
			cpu0 <- c.cpuSeconds()
		}()
		r, err := loadgen.Run(ctx, loadgen.Config{URLs: c.urls, Agents: agents, Containers: containersPerNode, Interval: time.Second,
			Warmup: time.Until(from), Duration: m.duration, ProbesPerInterval: 10, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			c.stop()
			return nil, err
		}
		cpu := (c.cpuSeconds() - <-cpu0) / m.duration.Seconds()
		c.stop()
		runs = append(runs, ingestRun{what: m.what, r: r, cpu: cpu, rolls: m.rolls})
	}
	return runs, nil
}

func printIngest(runs []ingestRun, agents int) {
	fmt.Printf("\nIngest cost of the rollups: 3 replicas (fsync on) and the load generator on one machine, %d agents x %d cgroups "+
		"with pod metadata, 1s interval\n\n", agents, containersPerNode)
	fmt.Println("| measured | series/s | freshness p50 | p99 | max | probes | backlog start | end | dropped | replicas CPU |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range runs {
		what := fmt.Sprintf("%s (%.0f s, %d rolls)", r.what, r.r.Measured.Seconds(), r.rolls)
		fmt.Printf("| %s | %.0f | %s | %s | %s | %d/%d | %.0f | %.0f | %.0f | %.2f cores |\n", what, r.r.SeriesPerSecond,
			ms(r.r.FreshP50), ms(r.r.FreshP99), ms(r.r.FreshMax), r.r.Probes-r.r.LostProbes, r.r.Probes, r.r.PendingFirst,
			r.r.PendingLast, r.r.Dropped, r.cpu)
	}
	fmt.Println("\n(\"between rolls\" is make bench-pipeline's measurement: the same load with no roll in its window. " +
		"docs/streaming.md compares it side by side with the binary from before the cost work.)")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// percentile returns the p-th percentile of sorted ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
