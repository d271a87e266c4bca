package main

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/cmd/penny/loadgen"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// local reads the one replica's store as it is: it leads, so that is
// current, without a ReadIndex round that the load generator's traffic
// can time out.
var local = kvraft.ReadOptions{Consistency: kvraft.Eventual}

// The history's key prefixes (docs/cost.md, "Records and units").
const (
	minutePrefix   = "penny/v1/hist/m/"
	identityPrefix = "penny/v1/hist/c/"
)

// allocResult is what the allocation bench measured.
type allocResult struct {
	nodes, pods, containers, days int
	// identities are the containers' identities in the store (a pod's
	// relabelling would make two for one container).
	identities int
	// rolledMinutes are the whole minutes rolled from the real ingest;
	// hours the hour records written before them.
	rolledMinutes, hours int
	writeTime            time.Duration
	// queries were measured while the load generator kept sending (busy)
	// and once it had stopped (idle).
	busy, idle []queryResult
	// allocPerQuery is what the replica allocated per idle query (Go
	// heap bytes, go_memstats_alloc_bytes_total).
	allocPerQuery float64
	requests      int
	dir           string // the replica's data
	interval      time.Duration
	// Bytes of keys and values in the store.
	hourBytes, identityBytes, minuteBytes int64
	// minuteContainerMinutes are the container-minutes the minute records
	// hold.
	minuteContainerMinutes int64
	rss, peak              int64
}

type queryResult struct {
	params        string
	p50, p99, max time.Duration
	bytes         int
	// cpu is the replica's CPU time per measured request: what the
	// query costs, whatever else shares the machine.
	cpu time.Duration
}

// nodeMinutes is what the real rolls wrote of one node: its whole
// minutes' entries summed per ref, and the terms of its last segment.
type nodeMinutes struct {
	first    int64 // start of its first minute record, unix seconds
	last     history.Segment
	sums     map[uint64]*history.Entry
	minutes  int
	refs     []uint64
	rawBytes int64
}

func allocationBench(ctx context.Context, penny, dir string, nodes, days, queries int, interval, rollWait time.Duration) (*allocResult, error) {
	fmt.Fprintf(os.Stderr, "benchcost: %d simulated nodes x %d cgroups on one replica, rolled up in real time\n", nodes, containersPerNode)
	c, err := startCluster(ctx, penny, dir, 1)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	lctx, cancel := context.WithCancel(ctx)
	loaded := make(chan error, 1)
	go func() {
		_, err := loadgen.Run(lctx, loadgen.Config{URLs: c.urls, Agents: nodes, Containers: containersPerNode, Interval: interval,
			Duration: 2 * time.Hour, ProbesPerInterval: 1, Logger: slog.New(slog.DiscardHandler)})
		loaded <- err
	}()
	stopLoad := func() {
		if cancel != nil {
			cancel()
			<-loaded
			cancel = nil
		}
	}
	defer stopLoad()

	// Three rolls of every node: the first covers part of a minute, the
	// next two whole minutes.
	// On a machine shared with other work the rolls fall behind (each
	// node's roll is conditioned on its agent not having sent since it
	// read, and the agents send every second): wait, and say how it goes.
	begin := time.Now()
	deadline, report := begin.Add(rollWait), begin
	for {
		n, err := metric(c.urls[0], "penny_history_minutes_rolled_total")
		if err == nil && n >= float64(3*nodes) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the leader rolled %v node-minutes in %s, want %d (%v)", n, rollWait, 3*nodes, err)
		}
		if time.Since(report) >= 30*time.Second {
			report = time.Now()
			conflicts, _ := metric(c.urls[0], "penny_history_roll_conflicts_total")
			fmt.Fprintf(os.Stderr, "benchcost: %.0f node-minutes rolled of %d after %s (%.0f roll conflicts)\n", n, 3*nodes,
				time.Since(begin).Round(time.Second), conflicts)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	res := &allocResult{nodes: nodes, days: days, requests: queries, dir: dir, interval: interval}
	kv := c.client(0)
	// Every node needs a whole minute for its containers' rates: the
	// rolls counted above may be some nodes' more than others'.
	var byNode map[string]*nodeMinutes
	for wait := 0; ; wait++ {
		var err error
		if byNode, err = readMinutes(ctx, kv); err != nil {
			return nil, err
		}
		without := nodes - len(byNode)
		for _, nm := range byNode {
			if nm.minutes == 0 {
				without++
			}
		}
		if without == 0 {
			break
		}
		if wait == 12 {
			return nil, fmt.Errorf("%d nodes of %d without a whole minute rolled", without, nodes)
		}
		fmt.Fprintf(os.Stderr, "benchcost: %d nodes without a whole minute rolled yet\n", without)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(15 * time.Second):
		}
	}
	pods := map[string]bool{}
	h0 := int64(1) << 62
	for node, nm := range byNode {
		ids, err := kv.RangeAll(ctx, []byte(identityPrefix+node+"/"), local)
		if err != nil {
			return nil, err
		}
		res.identities += len(ids.Items)
		for _, it := range ids.Items {
			res.identityBytes += int64(len(it.Key) + len(it.Value))
			id, err := history.DecodeIdentity(it.Value)
			if err != nil {
				return nil, err
			}
			if id.Pod != "" {
				pods[id.Namespace+"/"+id.Pod] = true
			}
		}
		res.containers += len(nm.refs)
		res.rolledMinutes = max(res.rolledMinutes, nm.minutes)
		res.minuteBytes += nm.rawBytes
		res.minuteContainerMinutes += int64(nm.minutes * len(nm.refs))
		h0 = min(h0, nm.first-nm.first%3600)
	}
	res.pods = len(pods)

	// The week before: hour records for the same containers, at their
	// rates in the real minutes.
	fmt.Fprintf(os.Stderr, "benchcost: writing %d days of hour records for %d containers\n", days, res.containers)
	begin = time.Now()
	var ops []kvraft.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		// Puts: a batch that timed out (the load generator shares the
		// cores) is sent again.
		var err error
		for try := range 5 {
			if _, err = kv.Batch(ctx, ops); err == nil || ctx.Err() != nil {
				break
			}
			fmt.Fprintf(os.Stderr, "benchcost: writing hours (try %d): %v\n", try+1, err)
		}
		ops, size = nil, 0
		return err
	}
	names := make([]string, 0, len(byNode))
	for n := range byNode {
		names = append(names, n)
	}
	slices.Sort(names)
	for h := h0 - int64(days)*24*3600; h < h0; h += 3600 {
		res.hours++
		for _, node := range names {
			v := hourRecord(node, byNode[node], h).Encode()
			ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: history.HourKey(h, node), Value: v})
			if size += len(v); size > 1<<20 {
				if err := flush(); err != nil {
					return nil, fmt.Errorf("write hours: %w", err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("write hours: %w", err)
	}
	res.writeTime = time.Since(begin)
	for h := h0 - int64(days)*24*3600; h < h0; h += 3600 {
		r, err := kv.RangeAll(ctx, history.HourKey(h, ""), local)
		if err != nil {
			return nil, err
		}
		for _, it := range r.Items {
			res.hourBytes += int64(len(it.Key) + len(it.Value))
		}
	}

	params := []string{"window=7d&aggregate=namespace", "window=7d&aggregate=pod", "window=7d&aggregate=namespace&step=1d"}
	fmt.Fprintf(os.Stderr, "benchcost: %d requests of each query under ingest\n", queries)
	for _, q := range params {
		qr, err := measure(ctx, c, q, queries)
		if err != nil {
			return nil, err
		}
		res.busy = append(res.busy, qr)
	}
	// Then without the load generator, which shares the cores: the
	// production aggregator does not share them with 167 agents.
	stopLoad()
	settle(ctx, c)
	fmt.Fprintf(os.Stderr, "benchcost: %d requests of each query, the load generator stopped\n", queries)
	alloc0, err := metric(c.urls[0], "go_memstats_alloc_bytes_total")
	if err != nil {
		return nil, err
	}
	n := 0
	for _, q := range params {
		qr, err := measure(ctx, c, q, queries)
		if err != nil {
			return nil, err
		}
		res.idle = append(res.idle, qr)
		n += queries + 2
	}
	alloc1, err := metric(c.urls[0], "go_memstats_alloc_bytes_total")
	if err != nil {
		return nil, err
	}
	res.allocPerQuery = (alloc1 - alloc0) / float64(n)
	res.rss, res.peak = c.memory(0)
	return res, nil
}

// settle waits (at most a minute) until the replica uses less than a
// fifth of a core: the ingest's backlog applied, its garbage collected.
func settle(ctx context.Context, c *cluster) {
	begin := time.Now()
	for time.Since(begin) < time.Minute {
		cpu0 := c.cpuSeconds()
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		if used := (c.cpuSeconds() - cpu0) / 2; used < 0.2 {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "benchcost: the replica settled in %s\n", time.Since(begin).Round(time.Second))
}

// readMinutes reads every minute record and sums each node's whole minutes
// per container.
func readMinutes(ctx context.Context, kv *kvhttp.Client) (map[string]*nodeMinutes, error) {
	r, err := kv.RangeAll(ctx, []byte(minutePrefix), local)
	if err != nil {
		return nil, err
	}
	out := map[string]*nodeMinutes{}
	for _, it := range r.Items {
		rest := strings.TrimPrefix(it.Key, minutePrefix)
		ts, node, ok := strings.Cut(rest, "/")
		start, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("minute key %q", it.Key)
		}
		rec, err := history.DecodeRecord(it.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Key, err)
		}
		nm := out[node]
		if nm == nil {
			nm = &nodeMinutes{first: start, sums: map[uint64]*history.Entry{}}
			out[node] = nm
		}
		nm.first = min(nm.first, start)
		for _, s := range rec.Segments {
			if s.End-s.Start != 60 || s.ObservedMs == 0 {
				continue // a partial minute (the first roll's) or nothing observed
			}
			nm.minutes++
			nm.last = s
			nm.rawBytes += int64(len(it.Key) + len(it.Value))
			for i := range s.Entries {
				e := &s.Entries[i]
				sum := nm.sums[e.Ref]
				if sum == nil {
					sum = &history.Entry{Ref: e.Ref}
					nm.sums[e.Ref] = sum
					nm.refs = append(nm.refs, e.Ref)
				}
				sum.Add(e)
			}
		}
	}
	for _, nm := range out {
		slices.Sort(nm.refs)
	}
	return out, nil
}

// hourRecord is an hour of a node in the store's format: every container
// of its real minutes observed the whole hour, using what it used per
// millisecond in them, varied by ±30% from hour to hour; requested as it
// requested; allocated max(used, requested).
func hourRecord(node string, nm *nodeMinutes, hour int64) *history.Record {
	s := history.Segment{Start: hour, End: hour + 3600, ObservedMs: 3_600_000, Node: nm.last.Node, Rates: nm.last.Rates}
	for _, ref := range nm.refs {
		sum := nm.sums[ref]
		if sum.ObservedMs == 0 {
			continue
		}
		k := 3_600_000 / float64(sum.ObservedMs)
		h := fnv.New64a()
		fmt.Fprintf(h, "%s/%d/%d", node, ref, hour)
		f := k * (0.7 + 0.6*float64(h.Sum64()%1000)/1000)
		e := history.Entry{Ref: ref, ObservedMs: 3_600_000,
			CPUUsedUs: uint64(float64(sum.CPUUsedUs) * f), CPURequestUs: uint64(float64(sum.CPURequestUs) * k),
			MemUsedKiBs: uint64(float64(sum.MemUsedKiBs) * f), MemRequestKiBs: uint64(float64(sum.MemRequestKiBs) * k),
			EgressInternetBytes: uint64(float64(sum.EgressInternetBytes) * f), EgressClusterBytes: uint64(float64(sum.EgressClusterBytes) * f)}
		e.CPUAllocUs, e.MemAllocKiBs = max(e.CPUUsedUs, e.CPURequestUs), max(e.MemUsedKiBs, e.MemRequestKiBs)
		s.Entries = append(s.Entries, e)
	}
	return &history.Record{Segments: []history.Segment{s}}
}

// measure asks GET /v1/allocation?params n times, after two unmeasured
// requests, one after the other.
func measure(ctx context.Context, c *cluster, params string, n int) (queryResult, error) {
	url := c.urls[0]
	qr := queryResult{params: params}
	hc := &http.Client{Timeout: time.Minute}
	var ds []time.Duration
	for i := range n + 2 {
		begin := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/allocation?"+params, nil)
		if err != nil {
			return qr, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return qr, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return qr, err
		}
		if resp.StatusCode != http.StatusOK {
			return qr, fmt.Errorf("%s: %s: %s", params, resp.Status, b)
		}
		if i == 1 {
			qr.cpu = -time.Duration(c.cpuSeconds() * float64(time.Second))
		}
		if i >= 2 {
			ds = append(ds, time.Since(begin))
		}
		qr.bytes = len(b)
	}
	qr.cpu = (qr.cpu + time.Duration(c.cpuSeconds()*float64(time.Second))) / time.Duration(n)
	qr.p50, qr.p99, qr.max = percentile(ds, 50), percentile(ds, 99), slices.Max(ds)
	return qr, nil
}

// metric reads a sample without labels from a replica's /metrics.
func metric(url, name string) (float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s on %s/metrics", name, url)
}

func (a *allocResult) print() {
	fmt.Printf("Penny cost allocation: one aggregator replica, %d simulated nodes x %d cgroups (%d pods, %d containers rolled up) "+
		"through the real ingest (a sample every %s) for %d whole minutes, and %d days of hour records before them written in the store's format "+
		"(%d hours x %d nodes, in %.0f s); its WAL and snapshots in %s\n\n", a.nodes, containersPerNode, a.pods, a.containers,
		a.interval, a.rolledMinutes, a.days, a.hours, a.nodes, a.writeTime.Seconds(), a.dir)
	fmt.Printf("GET /v1/allocation, %d requests of each one after the other (after 2 unmeasured). Idle: the load generator stopped, "+
		"the replica still leading and rolling (the target, p99 <= 100 ms for aggregate=namespace, applies there); under ingest: "+
		"while the %d simulated agents kept sending from the same 2 cores.\n\n", a.requests, a.nodes)
	fmt.Println("| GET /v1/allocation? | idle p50 | p99 | max | replica CPU | under ingest p50 | p99 | max | answer |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, q := range a.idle {
		b := a.busy[i]
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.params, ms(q.p50), ms(q.p99), ms(q.max), ms(q.cpu), ms(b.p50),
			ms(b.p99), ms(b.max), kib(int64(q.bytes)))
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("\n(replica CPU: its user and system time per idle request; the machine's load average after the queries: %s)\n",
			strings.Join(strings.Fields(string(la))[:3], " "))
	}
	fmt.Printf("\nThe replica allocated %s (Go heap) per idle query, on average over the three.\n", mib(int64(a.allocPerQuery)))
	days := float64(a.days)
	perDay := float64(a.hourBytes) / float64(a.containers) / days
	ident := float64(a.identityBytes) / float64(max(a.identities, 1))
	fmt.Println()
	fmt.Println("| store | bytes |")
	fmt.Println("|---|---:|")
	fmt.Printf("| hour records, per container per day | %.0f |\n", perDay)
	fmt.Printf("| identity, per container (once; %d identities of %d containers) | %.0f |\n", a.identities, a.containers, ident)
	fmt.Printf("| after compaction, per container per day, for a container that lived the %d days (target 2048) | %.0f |\n", a.days,
		perDay+ident/days)
	fmt.Printf("| minute records, per container per day while kept (48 h; from the real rolls) | %.0f |\n",
		float64(a.minuteBytes)/float64(a.minuteContainerMinutes)*1440)
	fmt.Printf("| the replica's RSS after the queries (peak) | %s (%s) |\n", mib(a.rss), mib(a.peak))
}

func kib(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
