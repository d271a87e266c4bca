// Command benchread measures the reads of pods (`make bench-read`;
// docs/custom-metrics.md, "Reads", has the table and how to read it).
//
// One replica in one process holds N simulated containers (the load
// generator's nodes of 100 cgroups with pod metadata, three samples each,
// 20 s apart, written as the ingest writes them), and every read runs
// twice in the same run: by ranging over the whole store and decoding
// every series (how every read worked before the pod index, and how the
// exporter's scrape still works) and through the pod index. It prints
// p50 and p99 per read with the target next to them. It is a
// benchmark, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/pennyhq/penny/aggregator/custommetrics"
	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/simstore"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

const perNode = 100 // cgroups per simulated node, as make bench-pipeline's

func main() {
	sizes := flag.String("containers", "5000,50000", "store sizes to measure, in containers (100 per node)")
	reads := flag.Int("reads", 200, "reads of each kind through the index, for the percentiles (scans: a tenth; the gateway: a tenth, the scrape: a twentieth)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the reads to this file")
	dir := flag.String("dir", "/dev/shm", "where the replica keeps its WAL: tmpfs by default, as the reads are measured, not the disk")
	only := flag.String("only", "", "measure only the reads whose name contains this (e.g. namespace)")
	scans := flag.Bool("scans", true, "measure each read by a scan of the whole store too")
	flag.Parse()
	ctx := context.Background()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchread:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "benchread:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var rows []row
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < perNode {
			fmt.Fprintf(os.Stderr, "benchread: -containers %q: want sizes of at least %d\n", f, perNode)
			os.Exit(2)
		}
		rs, err := measureSize(ctx, *dir, n/perNode, *reads, selection{only: *only, scans: *scans})
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchread:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		rows = append(rows, rs...)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "read\tcontainers\tselected\tscan p50\tscan p99\tindex p50\tindex p99\tindex CPU/read\ttarget (p99, 50,000)\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.containers, r.selected,
			ms(r.scan[0]), ms(r.scan[1]), ms(r.index[0]), ms(r.index[1]), ms(r.indexCPU), r.target)
	}
	w.Flush()
}

type row struct {
	name                 string
	containers, selected int
	scan, index          [2]time.Duration // p50, p99
	// indexCPU is the process' CPU time per read through the index (all
	// its goroutines', the collector's included).
	indexCPU time.Duration
	target   string
}

// selection is which reads to measure, and how.
type selection struct {
	only  string
	scans bool
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// replica is one store and its readers both ways.
type replica struct {
	node  *kvraft.Node
	index *podindex.Index
	// pods are every pod's namespace and name, workloads each namespace's
	// app labels.
	pods [][2]string
}

func measureSize(ctx context.Context, base string, nodes, reads int, sel selection) ([]row, error) {
	dir, err := os.MkdirTemp(base, "penny-benchread-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	idx := podindex.New()
	node, err := kvraft.Start(ctx, kvraft.Config{ID: 1, DataDir: dir, NewTransport: kvraft.SingleMember,
		InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}, TickInterval: 10 * time.Millisecond,
		Watcher: idx, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer node.Stop()
	for node.Status().Leader != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := fill(ctx, node, nodes); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "benchread: %d containers on %d nodes written in %s, %d in the pod index\n",
		nodes*perNode, nodes, time.Since(start).Round(time.Millisecond), idx.Len())
	rep := &replica{node: node, index: idx}
	all, err := mustReader(query.Config{Store: node}).Pods(ctx, query.Request{Read: bounded})
	if err != nil {
		return nil, err
	}
	for _, p := range all.Pods {
		rep.pods = append(rep.pods, [2]string{p.Namespace, p.Name})
	}
	rows, err := rep.measure(ctx, nodes*perNode, reads, sel)
	if err != nil {
		return nil, err
	}
	// What the index costs: the heap with it, and emptied.
	with := heap()
	indexed := idx.Len()
	idx.Reset(emptyStore)
	without := heap()
	fmt.Fprintf(os.Stderr, "benchread: %d containers: the pod index holds %.1f MiB, %.0f bytes per pod series\n",
		nodes*perNode, float64(with-without)/(1<<20), float64(with-without)/float64(indexed))
	return rows, nil
}

var emptyStore = kvstore.New()

// heap returns the live heap after a collection.
func heap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

var bounded = kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: query.DefaultStaleness}

func mustReader(cfg query.Config) *query.Reader {
	r, err := query.New(cfg)
	if err != nil {
		panic(err) // a bug in this program's configs
	}
	return r
}

// fill writes nodes simulated nodes as the ingest would
// (internal/simstore).
func fill(ctx context.Context, n *kvraft.Node, nodes int) error {
	return simstore.Fill(nodes, perNode, time.Now(), func(node string, p *model.Plan) error {
		res, err := n.Txn(ctx, model.Txn(node, p.Expect, p.Ops))
		if err != nil || !res.Succeeded {
			return fmt.Errorf("%v (applied: %v)", err, res.Succeeded)
		}
		return nil
	})
}

// timed runs f n times and returns the p50 and p99 of its durations, and
// the process' CPU time per run.
func timed(n int, f func(i int) error) ([2]time.Duration, time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	cpu := cpuTime()
	for i := range n {
		t := time.Now()
		if err := f(i); err != nil {
			return [2]time.Duration{}, 0, err
		}
		ds = append(ds, time.Since(t))
	}
	perRun := (cpuTime() - cpu) / time.Duration(n)
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return [2]time.Duration{q(0.5), q(0.99)}, perRun, nil
}

// cpuTime is the CPU time the process has used, user and system (0 if
// it cannot tell).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// both measures a read against the plain store (unless scans is false)
// and against the indexed one.
func both(n int, scans bool, read func(s query.Store, i int) error) (scan, index [2]time.Duration, cpu time.Duration, err error) {
	// Scans are slow: a tenth as many (p99 is then nearly the maximum).
	if scans {
		if scan, _, err = timed(max(n/10, 10), func(i int) error { return read(scanStore, i) }); err != nil {
			return scan, index, 0, fmt.Errorf("scan: %w", err)
		}
	}
	if index, cpu, err = timed(n, func(i int) error { return read(indexStore, i) }); err != nil {
		return scan, index, 0, fmt.Errorf("index: %w", err)
	}
	return scan, index, cpu, nil
}

// The two ways a reader is given the replica.
var scanStore, indexStore query.Store

func (r *replica) measure(ctx context.Context, containers, n int, sel selection) ([]row, error) {
	scanStore, indexStore = r.node, podindex.Store{Node: r.node, Index: r.index}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := make([][2]string, n)
	for i := range pick {
		pick[i] = r.pods[rng.IntN(len(r.pods))]
	}
	var rows []row
	add := func(name string, selected int, target string, read func(s query.Store, i int) error, times int) error {
		if !strings.Contains(name, sel.only) {
			return nil
		}
		scan, index, cpu, err := both(times, sel.scans, read)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, row{name: name, containers: containers, selected: selected, scan: scan, index: index,
			indexCPU: cpu, target: target})
		return nil
	}

	providers := map[query.Store]*custommetrics.Provider{}
	for _, s := range []query.Store{scanStore, indexStore} {
		p, err := custommetrics.NewProvider(custommetrics.Config{Store: s})
		if err != nil {
			return nil, err
		}
		providers[s] = p
	}
	rss := provider.CustomMetricInfo{GroupResource: custommetrics.PodsResource, Namespaced: true, Metric: pods.MemoryRSSBytes}
	if err := add("custom metrics: one pod", 3, "5 ms", func(s query.Store, i int) error {
		_, err := providers[s].GetMetricByName(ctx, types.NamespacedName{Namespace: pick[i][0], Name: pick[i][1]}, rss, labels.Everything())
		return err
	}, n); err != nil {
		return nil, err
	}
	// The HPA's read: a workload's pods by its selector.
	app := func(i int) labels.Selector {
		return labels.SelectorFromSet(labels.Set{"app": strings.SplitN(pick[i][1], "-", 3)[0] + "-" + strings.SplitN(pick[i][1], "-", 3)[1]})
	}
	workload := 0
	for _, p := range r.pods {
		if p[0] == pick[0][0] && app(0).Matches(labels.Set{"app": strings.Join(strings.SplitN(p[1], "-", 3)[:2], "-")}) {
			workload++
		}
	}
	if err := add("custom metrics: a workload (HPA)", workload*3, "-", func(s query.Store, i int) error {
		_, err := providers[s].GetMetricBySelector(ctx, pick[i][0], app(i), rss, labels.Everything())
		return err
	}, n); err != nil {
		return nil, err
	}
	nsSize := 0
	for _, p := range r.pods {
		if p[0] == pick[0][0] {
			nsSize++
		}
	}
	if err := add("query: a namespace's pods", nsSize*3, "20 ms", func(s query.Store, i int) error {
		_, err := mustReaderOf(s).Pods(ctx, query.Request{Read: bounded, Pods: pods.Query{Namespace: pick[i][0]}})
		return err
	}, n); err != nil {
		return nil, err
	}
	gws := map[query.Store]http.Handler{}
	for _, s := range []query.Store{scanStore, indexStore} {
		h, err := gateway.NewHandler(gateway.Config{Store: s})
		if err != nil {
			return nil, err
		}
		gws[s] = h
	}
	if err := add("GET /v1/pods?namespace=", nsSize*3, "-", func(s query.Store, i int) error {
		rec := httptest.NewRecorder()
		gws[s].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/pods?namespace="+pick[i][0], nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("status %d: %s", rec.Code, rec.Body.String())
		}
		return nil
	}, max(n/10, 5)); err != nil {
		return nil, err
	}
	if !strings.Contains("exporter scrape", sel.only) {
		return rows, nil
	}
	row, err := scrape(containers, n, sel)
	if err != nil {
		return nil, err
	}
	return append(rows, row), nil
}

// scrape measures the exporter's scrape.
func scrape(containers, n int, sel selection) (row, error) {
	// As the server gathers: the collector's container families beside a
	// registry's (exporter.Beside).
	regs := map[query.Store]prometheus.Gatherer{}
	for _, s := range []query.Store{scanStore, indexStore} {
		c, err := exporter.New(exporter.Config{Store: s})
		if err != nil {
			return row{}, err
		}
		regs[s] = exporter.Beside(prometheus.NewRegistry(), c)
	}
	mfs, err := regs[indexStore].Gather()
	if err != nil {
		return row{}, err
	}
	samples := 0
	for _, mf := range mfs {
		samples += len(mf.GetMetric())
	}
	fmt.Fprintf(os.Stderr, "benchread: a scrape of %d containers is %d series in %d families\n", containers, samples, len(mfs))
	scan, index, cpu, err := both(max(n/20, 5), sel.scans, func(s query.Store, _ int) error {
		_, err := regs[s].Gather()
		return err
	})
	if err != nil {
		return row{}, fmt.Errorf("exporter scrape: %w", err)
	}
	return row{name: "exporter scrape", containers: containers, selected: containers, scan: scan, index: index,
		indexCPU: cpu, target: "500 ms"}, nil
}

var readers = map[query.Store]*query.Reader{}

func mustReaderOf(s query.Store) *query.Reader {
	if r, ok := readers[s]; ok {
		return r
	}
	r := mustReader(query.Config{Store: s})
	readers[s] = r
	return r
}
