// Command benchpipeline measures the streaming pipeline on this machine: a
// 3-replica aggregator cluster (penny aggregator processes, fsync on) fed by
// the load generator at increasing loads. For each load it prints freshness
// (sample time to readable on every replica), the backlog of frames waiting
// for acknowledgement at the start and the end of the measurement, and the
// replicas' CPU; the largest load that keeps p99 freshness under the target
// with no growing backlog is the answer. With -identity on (or both, each
// load twice, side by side), every simulated agent authenticates with its
// own node's bearer token (a token file of one agent identity per node)
// and the ingest checks each frame's node against it, as the chart's
// defaults do.
//
// Run it through `make bench-pipeline`, which also prints the wire-size table.
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
	"text/tabwriter"
	"time"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/cmd/penny/loadgen"
	"github.com/pennyhq/penny/internal/freeport"
	"github.com/pennyhq/penny/internal/procstat"
)

const targetP99 = 250 * time.Millisecond

func main() {
	penny := flag.String("penny", "bin/penny", "the penny binary")
	levels := flag.String("agents", "100,250,500,750,1000", "loads to run, in agents")
	containers := flag.Int("containers", 100, "cgroups per agent")
	warmup := flag.Duration("warmup", 10*time.Second, "warmup per load")
	duration := flag.Duration("duration", 45*time.Second, "measurement per load")
	podMeta := flag.String("pod-meta", "on", "agents send pod metadata: on, off, or both (each load twice, side by side)")
	identity := flag.String("identity", "off", "agents authenticate with per-node tokens: on, off, or both (each load twice, side by side)")
	envFlag := flag.String("replica-env", "", "environment for every replica, space-separated KEY=VALUE (e.g. GOMEMLIMIT=280MiB)")
	flag.DurationVar(&every, "every", 0, "also print the largest replica's RSS and data directory this often while a load runs (e.g. 1m)")
	replicaArgs := flag.String("replica-args", "", "more flags for every replica, space-separated "+
		"(e.g. \"--snapshot-bytes 1099511627776\": snapshots by entry count only, as before they came by bytes)")
	flag.Parse()
	extraArgs = strings.Fields(*replicaArgs)
	replicaEnv = strings.Fields(*envFlag)
	choices := map[string][]bool{"on": {true}, "off": {false}, "both": {false, true}}
	metas, idents := choices[*podMeta], choices[*identity]
	if metas == nil || idents == nil {
		fmt.Fprintln(os.Stderr, "benchpipeline: -pod-meta and -identity must be on, off or both")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *penny, *levels, *containers, *warmup, *duration, metas, idents); err != nil {
		fmt.Fprintln(os.Stderr, "benchpipeline:", err)
		os.Exit(1)
	}
}

// extraArgs are -replica-args, replicaEnv -replica-env, every -every.
var (
	extraArgs  []string
	replicaEnv []string
	every      time.Duration
)

type row struct {
	kind
	r   *loadgen.Result
	cpu float64 // cores used by the three replicas together
	// rss, peak and disk are the largest replica's resident memory at the
	// end, its peak, and its data directory's bytes at the end.
	rss, peak, disk int64
	st              stages
}

// kind is what a load's agents do besides sampling.
type kind struct {
	meta  bool // they send pod metadata
	ident bool // they authenticate as their node
}

func run(ctx context.Context, penny, levels string, containers int, warmup, duration time.Duration, metas, idents []bool) error {
	var rows []row
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad load %q", f)
		}
		for _, meta := range metas {
			for _, ident := range idents {
				k := kind{meta: meta, ident: ident}
				fmt.Fprintf(os.Stderr, "benchpipeline: %d agents x %d cgroups, pod metadata %v, identities %v, %s warmup, %s measured\n",
					n, containers, meta, ident, warmup, duration)
				r, err := level(ctx, penny, n, containers, warmup, duration, k)
				if err != nil {
					return err
				}
				r.kind = k
				rows = append(rows, *r)
			}
		}
	}
	print(rows, containers)
	return nil
}

// level runs one load against a fresh cluster.
func level(ctx context.Context, penny string, agents, containers int, warmup, duration time.Duration, k kind) (*row, error) {
	dir, err := os.MkdirTemp("/var/tmp", "penny-benchpipeline-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var apis, peers []string
	for range 6 {
		addr, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		if len(apis) < 3 {
			apis = append(apis, addr)
		} else {
			peers = append(peers, addr)
		}
	}
	var ic []string
	for i, p := range peers {
		ic = append(ic, fmt.Sprintf("%d=http://%s", i+1, p))
	}
	token := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	cfg := loadgen.Config{Agents: agents, Containers: containers, Interval: time.Second,
		Warmup: warmup, Duration: duration, ProbesPerInterval: 10, NoPodMeta: !k.meta, Logger: slog.New(slog.DiscardHandler)}
	var auth []string
	if k.ident {
		file, err := tokenFile(dir, agents, token, &cfg)
		if err != nil {
			return nil, err
		}
		// The probes poll as one identity: the rate limit, a separate
		// module (bench-auth measures it), is off.
		auth = []string{"--token-auth-file", file, "--rate-limit-qps", "0"}
	}
	var procs []*exec.Cmd
	defer func() {
		// SIGTERM first: a replica writes its CPU profile as it stops.
		for _, p := range procs {
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
	}()
	for i := range 3 {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d.log", i+1)))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		cmd := exec.Command(penny, "aggregator", "--id", strconv.Itoa(i+1), "--cluster-token", token,
			"--data-dir", filepath.Join(dir, strconv.Itoa(i+1)), "--listen", apis[i], "--peer-listen", peers[i],
			"--initial-cluster", strings.Join(ic, ","))
		cmd.Args = append(cmd.Args, auth...)
		cmd.Args = append(cmd.Args, extraArgs...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), replicaEnv...)
		if prof := os.Getenv("PENNY_CPUPROFILE"); prof != "" {
			// One profile per replica: <path>.<id>.
			cmd.Env = append(cmd.Env, fmt.Sprintf("PENNY_CPUPROFILE=%s.%d", prof, i+1))
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	var urls []string
	for _, a := range apis {
		urls = append(urls, "http://"+a)
		if err := waitHealthy(ctx, "http://"+a); err != nil {
			return nil, err
		}
	}
	cpu0 := cpuSeconds(procs)
	gen0 := procstat.CPUSeconds(os.Getpid())
	m0, err := procstat.ReadMachine()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cfg.URLs = urls
	if every > 0 {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go watchMemory(wctx, procs, dir, start)
	}
	r, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	cpu := (cpuSeconds(procs) - cpu0) / took.Seconds()
	out := &row{r: r, cpu: cpu}
	m1, err := procstat.ReadMachine()
	if err != nil {
		return nil, err
	}
	out.st.busy, out.st.steal = machineUse(m0, m1, took)
	out.st.gen = (procstat.CPUSeconds(os.Getpid()) - gen0) / took.Seconds()
	if err := scrapeStages(ctx, urls, cfg.ProbeToken, &out.st); err != nil {
		return nil, err
	}
	for i, p := range procs {
		rss, peak := procstat.Memory(p.Process.Pid)
		out.rss, out.peak = max(out.rss, rss), max(out.peak, peak)
		out.disk = max(out.disk, dirBytes(filepath.Join(dir, strconv.Itoa(i+1))))
	}
	return out, nil
}

// watchMemory prints, every -every until ctx ends, the largest replica's
// RSS and data directory: whether they stay flat under a steady load.
func watchMemory(ctx context.Context, procs []*exec.Cmd, dir string, start time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rss, disk int64
		for i, p := range procs {
			r, _ := procstat.Memory(p.Process.Pid)
			rss = max(rss, r)
			disk = max(disk, dirBytes(filepath.Join(dir, strconv.Itoa(i+1))))
		}
		fmt.Fprintf(os.Stderr, "benchpipeline: %6s  largest replica RSS %4d MiB  data dir %4d MiB\n",
			time.Since(start).Round(time.Second), rss>>20, disk>>20)
	}
}

// dirBytes sums the sizes of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// tokenFile writes a token file of one agent identity per simulated node
// and an admin for the probes, and sets cfg's tokens to match.
func tokenFile(dir string, agents int, secret string, cfg *loadgen.Config) (string, error) {
	var b strings.Builder
	tokens := make(map[string]string, agents)
	for i := range agents {
		node := loadgen.NodeName(i)
		tokens[node] = fmt.Sprintf("%s-agent-%d", secret, i)
		fmt.Fprintf(&b, "%s,%s,uid-%d,%q\n", tokens[node], node, i, authn.GroupAgents)
	}
	cfg.ProbeToken = secret + "-admin"
	fmt.Fprintf(&b, "%s,bench-admin,uid-admin,%q\n", cfg.ProbeToken, authn.GroupAdmins)
	cfg.AgentToken = func(node string) string { return tokens[node] }
	file := filepath.Join(dir, "tokens.csv")
	return file, os.WriteFile(file, []byte(b.String()), 0o600)
}

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

// cpuSeconds sums the processes' CPU time.
func cpuSeconds(procs []*exec.Cmd) float64 {
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.Process.Pid
	}
	return procstat.CPUSeconds(pids...)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func print(rows []row, containers int) {
	fmt.Printf("Penny pipeline load: 3 aggregator replicas (fsync on) and the load generator on one machine, %d cgroups per agent, 1s interval\n\n", containers)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "agents\tpod meta\tidentity\tseries/s\tfreshness p50\tp99\tmax\tprobes\tbacklog start\tend\tdropped\treplicas CPU\treplica RSS\tpeak\tdata dir\tp99 < 250ms\t")
	best := map[kind]int{}
	for _, r := range rows {
		ok := r.r.Sustained() && r.r.FreshP99 < targetP99
		verdict := "yes"
		if !ok {
			verdict = "NO"
		} else {
			best[r.kind] = max(best[r.kind], r.r.Agents)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%s\t%s\t%s\t%d/%d\t%.0f\t%.0f\t%.0f\t%.2f cores\t%s\t%s\t%s\t%s\t\n", r.r.Agents, yesNo(r.meta), yesNo(r.ident), r.r.SeriesPerSecond,
			ms(r.r.FreshP50), ms(r.r.FreshP99), ms(r.r.FreshMax), r.r.Probes-r.r.LostProbes, r.r.Probes,
			r.r.PendingFirst, r.r.PendingLast, r.r.Dropped, r.cpu, mib(r.rss), mib(r.peak), mib(r.disk), verdict)
	}
	tw.Flush()
	fmt.Println()
	printStages(rows)
	fmt.Println()
	for _, k := range []kind{{true, false}, {false, false}, {true, true}, {false, true}} {
		if !slices.ContainsFunc(rows, func(r row) bool { return r.kind == k }) {
			continue
		}
		with := "with pod metadata"
		if !k.meta {
			with = "without pod metadata"
		}
		if k.ident {
			with += " and per-node identities"
		}
		fmt.Printf("largest load sustained with p99 freshness under %s, %s: %d agents x %d cgroups\n", targetP99, with, best[k], containers)
	}
}

// printStages prints where each load's time went: the machine's CPU
// (the replicas', the generator's, stolen), how late the generator sampled,
// and the replicas' own stages.
func printStages(rows []row) {
	fmt.Println("Where the time went (from queued: freshness from the frame's queueing for sending, without the generator's delay;")
	fmt.Println("generator late: sample time to frame queued; machine: all its CPUs; generator: this process; replica stages: p99 over the whole run, warmup included;")
	fmt.Println("store and live heap: the largest replica's at the end, the heap estimated from its collector's goal; per series: live heap / series)")
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "agents\tpod meta\tidentity\tfreshness p99\tfrom queued p50\tp99\tgenerator late p50\tp99\tgenerator CPU\treplicas CPU\tmachine busy\tstolen\t"+
		"leader proposal p99\tWAL persist p99\tqueue wait p99\tsnapshots\tstore\tlive heap\tper series\t")
	for _, r := range rows {
		series := float64(r.r.Agents * r.r.Containers)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f cores\t%.2f cores\t%.2f cores\t%.2f cores\t%s\t%s\t%s\t%.0f\t%s\t%s\t%.1f KB\t\n",
			r.r.Agents, yesNo(r.meta), yesNo(r.ident), ms(r.r.FreshP99), ms(r.r.QueuedP50), ms(r.r.QueuedP99), ms(r.r.LateP50), ms(r.r.LateP99),
			r.st.gen, r.cpu, r.st.busy, r.st.steal, ms(r.st.proposal), ms(r.st.persist), ms(r.st.backpressure), r.st.snapshots,
			mib(int64(r.st.store)), mib(int64(r.st.heap)), r.st.heap/series/1e3)
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
