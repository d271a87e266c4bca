// Command benchwire compares the size of what a Penny agent sends per
// sampling interval in the wire format with what its Prometheus endpoint
// serves for the same cgroups: the text exposition, the same gzipped, and
// the protobuf exposition. The Prometheus bytes come from the agent's own
// collector (agent/nodemetrics), fed the simulated samples.
//
//	go run ./hack/benchwire -cgroups 100,1000
//
// The workload model is in workload.go and docs/wire.md. It is a
// benchmark, not a test: it checks that every frame decodes and applies to
// the state it should, and prints a table.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/nodemetrics"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/simnode"
	"github.com/pennyhq/penny/wire"
)

// agentID is a typical cloud node name, as long as they come.
const agentID = "ip-10-0-12-34.eu-west-1.compute.internal"

type config struct {
	cgroups       []int
	intervals     int
	interval      time.Duration
	uptime        time.Duration
	keyframeEvery int
	seed          uint64
	allBusy       bool
}

func (c *config) Validate() error {
	if len(c.cgroups) == 0 {
		return errors.New("-cgroups: no sizes")
	}
	for _, n := range c.cgroups {
		if n < 1 {
			return fmt.Errorf("-cgroups: %d", n)
		}
	}
	if c.intervals < 2 || c.interval <= 0 || c.uptime < 0 || c.keyframeEvery < 1 {
		return errors.New("-intervals must be at least 2, -interval and -keyframe-every positive, -uptime not negative")
	}
	return nil
}

func main() {
	var cfg config
	var sizes string
	flag.StringVar(&sizes, "cgroups", "100,1000", "comma-separated node sizes (cgroups per sample)")
	flag.IntVar(&cfg.intervals, "intervals", 60, "sampling intervals measured")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "sampling interval")
	flag.DurationVar(&cfg.uptime, "uptime", 6*time.Hour, "how long the agent has been running (sets the counters' magnitude)")
	flag.IntVar(&cfg.keyframeEvery, "keyframe-every", 60, "keyframe period for the amortized row, in frames")
	flag.Uint64Var(&cfg.seed, "seed", 1, "random seed")
	flag.BoolVar(&cfg.allBusy, "all-busy", false, "make every cgroup busy (the worst case for deltas)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchwire: -cgroups: %v\n", err)
			os.Exit(2)
		}
		cfg.cgroups = append(cfg.cgroups, n)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "benchwire: %v\n", err)
		os.Exit(2)
	}
	for i, n := range cfg.cgroups {
		if i > 0 {
			fmt.Println()
		}
		r, err := run(&cfg, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchwire: %d cgroups: %v\n", n, err)
			os.Exit(1)
		}
		r.print(os.Stdout, &cfg)
	}
}

// result sums what run measured over the intervals after the first.
type result struct {
	cgroups       int
	intervals     int
	seriesSamples int // series summed over the intervals
	changed       int // series in the delta frames, removals included
	classes       map[string]int
	text, gzip    int
	proto         int
	keyframe      int
	deltas        []int
	deltaBodies   int // delta bodies before snappy
	keyBodies     int // keyframe bodies before snappy
}

func run(cfg *config, n int) (*result, error) {
	nd := simnode.New(n, cfg.seed, cfg.uptime, cfg.allBusy)
	var cur *sampler.Sample
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(nodemetrics.NewCollector(func() *sampler.Sample { return cur }, nil, nil)); err != nil {
		return nil, err
	}
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: agentID, Incarnation: 1})
	if err != nil {
		return nil, err
	}
	keyEnc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: agentID, Incarnation: 2})
	if err != nil {
		return nil, err
	}
	st, err := wire.NewState(wire.Limits{})
	if err != nil {
		return nil, err
	}
	r := &result{cgroups: n, intervals: cfg.intervals, classes: map[string]int{}}
	r.classes = nd.Classes()
	// Interval 0 sends the keyframe the deltas build on.
	cur = nd.Step(cfg.interval)
	if _, err := send(enc, st, daemon.Snapshot(cur, nd.Resolve)); err != nil {
		return nil, err
	}
	for i := range cfg.intervals {
		if i == cfg.intervals/2 {
			nd.ReplacePod()
		}
		cur = nd.Step(cfg.interval)
		snap := daemon.Snapshot(cur, nd.Resolve)
		text, gz, proto, err := prometheusSizes(reg)
		if err != nil {
			return nil, err
		}
		f, err := send(enc, st, snap)
		if err != nil {
			return nil, fmt.Errorf("interval %d: %w", i+1, err)
		}
		if f.Keyframe {
			return nil, fmt.Errorf("interval %d: keyframe in steady state", i+1)
		}
		key, err := keyEnc.Encode(snap, true)
		if err != nil {
			return nil, err
		}
		r.seriesSamples += len(snap.Series)
		r.changed += len(f.Series) + len(f.Removed)
		r.text += text
		r.gzip += gz
		r.proto += proto
		r.keyframe += len(key)
		r.deltas = append(r.deltas, f.Len())
		n, err := bodyLen(f)
		if err != nil {
			return nil, err
		}
		r.deltaBodies += n
		kf, err := wire.Decode(key, wire.Limits{})
		if err != nil {
			return nil, err
		}
		if n, err = bodyLen(kf); err != nil {
			return nil, err
		}
		r.keyBodies += n
	}
	return r, nil
}

// send encodes s, decodes the frame and applies it to st, which must then
// hold s.
func send(enc *wire.Encoder, st *wire.State, s *wire.Snapshot) (*wire.Frame, error) {
	b, err := enc.Encode(s, false)
	if err != nil {
		return nil, err
	}
	f, err := wire.Decode(b, wire.Limits{})
	if err != nil {
		return nil, err
	}
	if err := st.Apply(f); err != nil {
		return nil, err
	}
	if got := st.Snapshot(); !reflect.DeepEqual(got, s) {
		return nil, errors.New("the state does not match the snapshot sent")
	}
	return f, nil
}

// bodyLen returns the size of f's body before compression, re-encoding f to
// find it: the frame's header only holds the compressed size.
func bodyLen(f *wire.Frame) (int, error) {
	b, err := wire.AppendFrame(nil, f, wire.Limits{})
	if err != nil {
		return 0, err
	}
	return snappy.DecodedLen(b[wire.HeaderSize+len(f.AgentID):])
}

// prometheusSizes gathers reg and returns the sizes of the text exposition,
// the same gzipped as promhttp does (default level), and the delimited
// protobuf exposition.
func prometheusSizes(reg prometheus.Gatherer) (text, gz, proto int, err error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, 0, 0, err
	}
	var tb, pb, gb bytes.Buffer
	for _, e := range []struct {
		w   io.Writer
		typ expfmt.FormatType
	}{{&tb, expfmt.TypeTextPlain}, {&pb, expfmt.TypeProtoDelim}} {
		enc := expfmt.NewEncoder(e.w, expfmt.NewFormat(e.typ))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return 0, 0, 0, err
			}
		}
		if c, ok := enc.(io.Closer); ok {
			if err := c.Close(); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	zw := gzip.NewWriter(&gb)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return 0, 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, 0, 0, err
	}
	return tb.Len(), gb.Len(), pb.Len(), nil
}

func (r *result) print(w io.Writer, cfg *config) {
	n := float64(r.intervals)
	perSeries := float64(r.seriesSamples)
	delta := 0
	for _, d := range r.deltas {
		delta += d
	}
	sorted := slices.Sorted(slices.Values(r.deltas))
	amortized := (float64(r.keyframe)/n + float64(cfg.keyframeEvery-1)*float64(delta)/n) / float64(cfg.keyframeEvery)
	fmt.Fprintf(w, "Penny wire size: %d cgroups (%d busy, %d light, %d idle), %d intervals of %v, agent up %v, seed %d\n",
		r.cgroups, r.classes["busy"], r.classes["light"], r.classes["idle"], r.intervals, cfg.interval, cfg.uptime, cfg.seed)
	fmt.Fprintf(w, "series changed per delta: %.1f of %.0f (%.0f%%); one pod replaced mid-run\n",
		float64(r.changed)/n, perSeries/n, 100*float64(r.changed)/perSeries)
	head := float64(wire.HeaderSize + len(agentID))
	fmt.Fprintf(w, "delta frames: p50 %d B, max %d B; header %.0f B; body %.0f B before snappy, %.0f B after; keyframe body %.0f B before, %.0f B after\n\n",
		sorted[len(sorted)/2], sorted[len(sorted)-1], head, float64(r.deltaBodies)/n, float64(delta)/n-head,
		float64(r.keyBodies)/n, float64(r.keyframe)/n-head)
	fmt.Fprintf(w, "| %-36s | %14s | %19s | %12s |\n", "encoding", "bytes/interval", "bytes/series-sample", "text / this")
	fmt.Fprintf(w, "|%s|%s:|%s:|%s:|\n", strings.Repeat("-", 38), strings.Repeat("-", 15), strings.Repeat("-", 20), strings.Repeat("-", 13))
	row := func(name string, total float64) {
		fmt.Fprintf(w, "| %-36s | %14.0f | %19.1f | %12.1f |\n", name, total/n, total/perSeries, float64(r.text)/total)
	}
	row("Prometheus text (agent /metrics)", float64(r.text))
	row("Prometheus text, gzip", float64(r.gzip))
	row("Prometheus protobuf, delimited", float64(r.proto))
	row("Penny keyframe", float64(r.keyframe))
	row("Penny delta (steady state)", float64(delta))
	row(fmt.Sprintf("Penny, a keyframe every %d frames", cfg.keyframeEvery), amortized*n)
	ratio := float64(r.text) / float64(delta)
	verdict := "met"
	if ratio < 20 {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "\ntext / Penny delta = %.0fx (target >= 20x: %s); gzip text / Penny delta = %.0fx\n",
		ratio, verdict, float64(r.gzip)/float64(delta))
}
