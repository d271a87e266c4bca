package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pennyhq/penny/internal/mpcheck"
)

// A series that goes (removed by its agent, left out of a keyframe, or
// ended by its agent's restart or its counters going back) leaves a final
// record: its accruals up to its end, its counters and its metadata, so
// that the history can count what it did since its last rollup. The
// history's roller deletes final records once it has rolled them up.
//
// Final records live apart from a node's records (a node's range stays
// what the ingest loads), under
//
//	penny/v1/gone/<node>/<incarnation:016x><seq:016x><path>
//
// keyed by the frame that ended the series, so that keys are unique and,
// within a node, in the order the series ended.
const gonePrefix = "penny/v1/gone/"

// GoneKey is the key of the final record of path on node, ended by the
// frame (inc, seq).
func GoneKey(node string, inc, seq uint64, path string) []byte {
	return fmt.Appendf(nil, "%s%s/%016x%016x%s", gonePrefix, node, inc, seq, path)
}

// GonePrefix selects a node's final records.
func GonePrefix(node string) []byte { return []byte(gonePrefix + node + "/") }

// AllGonePrefix selects every node's final records.
func AllGonePrefix() []byte { return []byte(gonePrefix) }

// ParseGoneKey splits a final record's key.
func ParseGoneKey(k []byte) (node string, inc, seq uint64, path string, err error) {
	rest, ok := strings.CutPrefix(string(k), gonePrefix)
	if !ok {
		return "", 0, 0, "", fmt.Errorf("%w: not a final record key: %q", ErrInvalid, k)
	}
	node, rest, ok = strings.Cut(rest, "/")
	if !ok || node == "" || len(rest) < 33 || rest[32] != '/' {
		return "", 0, 0, "", fmt.Errorf("%w: not a final record key: %q", ErrInvalid, k)
	}
	if inc, err = strconv.ParseUint(rest[:16], 16, 64); err == nil {
		seq, err = strconv.ParseUint(rest[16:32], 16, 64)
	}
	if err != nil {
		return "", 0, 0, "", fmt.Errorf("%w: final record key %q: %v", ErrInvalid, k, err)
	}
	return node, inc, seq, rest[32:], nil
}

// Final is a series' final record.
type Final struct {
	Path string `msgpack:"p"`
	// EndMs is when the series ended (unix ms): the sample time of the
	// frame that ended it, or, when the agent restarted, its last sample
	// held for one interval.
	EndMs   int64   `msgpack:"e"`
	Accrual Accrual `msgpack:"a"`
	// Counters at the end.
	CPUUsec    uint64            `msgpack:"cu,omitempty"`
	TxInternet uint64            `msgpack:"ti,omitempty"`
	TxCluster  uint64            `msgpack:"tc,omitempty"`
	Requests   uint64            `msgpack:"rq,omitempty"`
	Meta       map[string]string `msgpack:"m,omitempty"`
}

// final returns s's final record for an end at endMs, holding its last
// sample for at most holdCap ms.
func final(s *Stored, endMs, holdCap int64) *Final {
	c := countersOf(&s.Total)
	at := Ms(s.Time)
	end := endMs
	if h := int64(held(at, endMs, holdCap)); endMs > at {
		end = at + h
	} else {
		end = at
	}
	return &Final{Path: s.Path, EndMs: end, Accrual: s.Accrual.advance(gaugesOf(s), at, end, holdCap, counters{}),
		CPUUsec: c.cpu, TxInternet: c.txInternet, TxCluster: c.txCluster, Requests: c.requests, Meta: s.Meta}
}

// CumulativeAt returns the lifetime values at tms: at the end when tms is
// not earlier, or at the boundary before the end when tms is that
// boundary; ok is false for any other earlier time.
func (f *Final) CumulativeAt(tms int64) (Cumulative, bool) {
	c := counters{f.CPUUsec, f.TxInternet, f.TxCluster, f.Requests}
	switch {
	case tms >= f.EndMs:
		return f.Accrual.cumulative(c), true
	case tms == Boundary(f.EndMs):
		return f.Accrual.atBoundary(c), true
	}
	return f.Accrual.cumulative(c), false
}

// Encode encodes a final record.
func (f *Final) Encode() ([]byte, error) {
	b, err := msgpack.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode final record of %s: %w", f.Path, err)
	}
	return b, nil
}

// DecodeFinal decodes a final record.
func DecodeFinal(b []byte) (*Final, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: final record of %d bytes", ErrInvalid, len(b))
	}
	if err := mpcheck.Check(b); err != nil {
		return nil, fmt.Errorf("%w: final record: %v", ErrInvalid, err)
	}
	var f Final
	if err := msgpack.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: decode final record: %v", ErrInvalid, err)
	}
	return &f, nil
}
