package query

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/internal/parts"
	"github.com/pennyhq/penny/kvraft"
)

// podContainers returns the containers of the pods req selects, and maybe
// others (Group picks the pods): those of req.Pods' namespace (or pod)
// through the index when there is one, every container of req.Node
// otherwise.
func (r *Reader) podContainers(ctx context.Context, req Request) (*Snapshot, error) {
	if r.cfg.Index == nil || req.Pods.Namespace == "" {
		return r.Read(ctx, req)
	}
	if _, err := checkRequest(req); err != nil {
		return nil, err
	}
	var rd indexedRead
	err := r.cfg.Store.(Viewer).View(ctx, req.Read, func(st kvraft.State) error {
		ss := r.cfg.Index.Series(req.Pods.Namespace, req.Pods.Name, req.Pods.Selector)
		if len(ss) > r.cfg.MaxSeries {
			return r.tooMany()
		}
		rd.read(st, ss, req.Node, req.Window > 0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	agents, err := rd.decodeAgents()
	if err != nil {
		return nil, err
	}
	cs, err := rd.containers(agents, req.Window)
	if err != nil {
		return nil, err
	}
	// The series come sorted by node and path, as the containers of every
	// read.
	return r.price(rd.index, agents, cs), nil
}

// indexedRead is what a read through the index takes from one state: the
// pairs of each series the index names, with its pod and container from
// the index, and the agent record of each of their nodes. The pairs are
// the store's (read-only), decoded once the state is let go.
type indexedRead struct {
	series []indexedSeries
	// agents are the records of the series' nodes, in their order (nil:
	// none).
	agents []nodeRecord
	index  uint64
}

// indexedSeries is a series the index names and its pairs.
type indexedSeries struct {
	podindex.Series
	value, marks []byte
}

// nodeRecord is a node's agent record as stored.
type nodeRecord struct {
	node  string
	value []byte
}

// read reads the pairs of ss (sorted by node and path) at st: those of
// node only when it is set, their checkpoints when marks is set. The
// series' metadata is not read: the index that named them is at st too,
// and its Kube is that of the metadata st holds (podindex.Index.Series).
//
// Many series are read in parts of whole nodes on up to GOMAXPROCS
// goroutines (the state is only read), each into its own lists, which are
// then put together in order.
func (rd *indexedRead) read(st kvraft.State, ss []podindex.Series, node string, marks bool) {
	rd.index = st.Index
	cuts := parts.Cuts(len(ss), parts.Count(len(ss), minReadPart), func(j int) bool { return ss[j].Node == ss[j-1].Node })
	if len(cuts) <= 2 {
		rd.readPart(st, ss, node, marks)
		return
	}
	done := make([]indexedRead, len(cuts)-1)
	_ = parts.Run(cuts, func(i, lo, hi int) error {
		done[i].readPart(st, ss[lo:hi], node, marks)
		return nil
	})
	n, a := 0, 0
	for i := range done {
		n, a = n+len(done[i].series), a+len(done[i].agents)
	}
	rd.series, rd.agents = make([]indexedSeries, 0, n), make([]nodeRecord, 0, a)
	for i := range done {
		rd.series = append(rd.series, done[i].series...)
		rd.agents = append(rd.agents, done[i].agents...)
	}
}

// minReadPart is the fewest series a goroutine reads from the state: a
// series takes about half a microsecond to walk to, a goroutine one.
var minReadPart = 1024

// readPart is read on one goroutine.
func (rd *indexedRead) readPart(st kvraft.State, ss []podindex.Series, node string, marks bool) {
	rd.series = make([]indexedSeries, 0, len(ss))
	var kr keyReader
	for len(ss) > 0 {
		// The series of one node.
		n := 1
		for n < len(ss) && ss[n].Node == ss[0].Node {
			n++
		}
		run := ss[:n]
		ss = ss[n:]
		if node != "" && run[0].Node != node {
			continue
		}
		from := len(rd.series)
		kr.read(st, model.KindSeries, run, func(s *podindex.Series, v []byte) {
			rd.series = append(rd.series, indexedSeries{Series: *s, value: v})
		})
		got := rd.series[from:]
		if len(got) == 0 {
			continue // metadata first, or series going
		}
		if marks {
			kr.readMarks(st, got)
		}
		a, _ := st.Get(model.AppendKey(kr.key[:0], model.KindAgent, run[0].Node, ""))
		rd.agents = append(rd.agents, nodeRecord{node: run[0].Node, value: a.Value})
	}
}

// minWalk is the fewest series of a node read by walking their keys in
// one pass rather than looking each up: a lookup is a descent of the
// store's B-tree (about 1.5 µs at 150,000 keys, comparing long keys), a
// step of a walk about 50 ns, and a node's series the walk passes over
// are the ones the read does not ask for.
const minWalk = 4

// keyReader reads keys of one node's series, built into one buffer.
type keyReader struct {
	key []byte
}

// read calls found with the value of kind of each series of run (one
// node's, sorted by path) that st holds, in order.
func (kr *keyReader) read(st kvraft.State, kind model.KeyKind, run []podindex.Series, found func(*podindex.Series, []byte)) {
	if len(run) < minWalk {
		for i := range run {
			kr.key = model.AppendKey(kr.key[:0], kind, run[i].Node, run[i].Path)
			if kv, ok := st.Get(kr.key); ok {
				found(&run[i], kv.Value)
			}
		}
		return
	}
	// From the first key on, matching the paths in order (keys sort as
	// their paths do under one node and kind) until past the last, or
	// past the node's keys of kind: no end key, which the walk would
	// compare every key with.
	kr.key = model.AppendKey(kr.key[:0], kind, run[0].Node, run[0].Path)
	prefix := kr.key[:len(kr.key)-len(run[0].Path)]
	i := 0
	st.Ascend(kr.key, nil, func(kv kvraft.KV) bool {
		if !bytes.HasPrefix(kv.Key, prefix) {
			return false
		}
		path := kv.Key[len(prefix):]
		for i < len(run) && run[i].Path < string(path) {
			i++ // not stored
		}
		if i < len(run) && run[i].Path == string(path) {
			found(&run[i], kv.Value)
			i++
		}
		return i < len(run)
	})
}

// readMarks reads the checkpoints of got (one node's series, sorted).
func (kr *keyReader) readMarks(st kvraft.State, got []indexedSeries) {
	run := make([]podindex.Series, len(got))
	for i := range got {
		run[i] = got[i].Series
	}
	i := 0
	kr.read(st, model.KindMarks, run, func(s *podindex.Series, v []byte) {
		for got[i].Path != s.Path {
			i++
		}
		got[i].marks = v
	})
}

// decodeAgents decodes the agent records read, by node.
func (rd *indexedRead) decodeAgents() (map[string]*model.Agent, error) {
	agents := make(map[string]*model.Agent, len(rd.agents))
	for _, a := range rd.agents {
		if a.value == nil {
			continue
		}
		d, err := model.DecodeAgent(a.value)
		if err != nil {
			return nil, fmt.Errorf("agent record of %s: %w", a.node, err)
		}
		agents[a.node] = d
	}
	return agents, nil
}

// minPart is the fewest series a goroutine decodes or prices: fewer are
// done on the caller's alone (a goroutine costs about a microsecond, a
// series 2 to 4 to decode, half of one to price).
const minPart = 256

// containers decodes the series read into containers over window, in
// parts (inParts).
func (rd *indexedRead) containers(agents map[string]*model.Agent, window time.Duration) ([]model.Container, error) {
	cs := make([]model.Container, len(rd.series))
	err := inParts(len(cs), func(lo, hi int) error { return rd.decode(cs[lo:hi], lo, agents, window) })
	return cs, err
}

// inParts calls fn on parts [lo, hi) of [0, n) of at least minPart, on up
// to GOMAXPROCS goroutines (one part on the caller's): the same work,
// sooner when cores are free. It returns the error of the first part that
// failed, the one a run in order meets.
func inParts(n int, fn func(lo, hi int) error) error {
	return parts.Run(parts.Even(n, parts.Count(n, minPart)), func(_, lo, hi int) error { return fn(lo, hi) })
}

// decode decodes the series from the from-th into cs, one each (agents
// is only read).
func (rd *indexedRead) decode(cs []model.Container, from int, agents map[string]*model.Agent, window time.Duration) error {
	var st model.Stored // each series in turn
	for i := range cs {
		s := &rd.series[from+i]
		if err := model.DecodeStoredInto(&st, s.Path, s.value); err != nil {
			return fmt.Errorf("series %q on %s: %w", s.Path, s.Node, err)
		}
		if s.marks != nil {
			if err := st.SetMarks(s.marks); err != nil {
				return fmt.Errorf("checkpoints of %q on %s: %w", s.Path, s.Node, err)
			}
		}
		st.SetKube(s.Kube)
		cs[i] = model.View(s.Node, agents[s.Node], &st, window)
	}
	return nil
}
