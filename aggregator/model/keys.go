package model

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the model.
var (
	// ErrInvalid means a node name, path or stored value is malformed.
	ErrInvalid = errors.New("model: invalid")
)

const (
	nodesPrefix = "penny/v1/nodes/"
	agentSuffix = "/agent"
	seriesPart  = "/series/"
	metaPart    = "/meta/"
	marksPart   = "/marks/"

	// MaxNodeName is the longest node name (a DNS subdomain).
	MaxNodeName = 253
	// MaxPath is the longest cgroup path stored.
	MaxPath = 4096
)

// AgentKey is the key of a node's agent record.
func AgentKey(node string) []byte { return []byte(nodesPrefix + node + agentSuffix) }

// SeriesKey is the key of one cgroup of a node.
func SeriesKey(node, path string) []byte { return []byte(nodesPrefix + node + seriesPart + path) }

// MetaKey is the key of one cgroup's metadata (its pod, on Kubernetes),
// apart from its values: written when it changes, not with every sample.
func MetaKey(node, path string) []byte { return []byte(nodesPrefix + node + metaPart + path) }

// MarksKey is the key of one cgroup's checkpoints (Marks), apart from its
// values: written when a checkpoint is added, every MarkEvery, not with
// every sample.
func MarksKey(node, path string) []byte { return []byte(nodesPrefix + node + marksPart + path) }

// NodeSeriesPrefix selects every series of a node.
func NodeSeriesPrefix(node string) []byte { return []byte(nodesPrefix + node + seriesPart) }

// NodePrefix selects a node's agent record and series: one range reads
// them at one index.
func NodePrefix(node string) []byte { return []byte(nodesPrefix + node + "/") }

// AllNodesPrefix selects every node's records.
func AllNodesPrefix() []byte { return []byte(nodesPrefix) }

// KeyKind says what a key under AllNodesPrefix holds.
type KeyKind int

// Key kinds.
const (
	KindAgent KeyKind = iota + 1
	KindSeries
	KindMeta
	KindMarks
)

// AppendKey appends the key of kind of a node's series at path to dst and
// returns it: the series' value, metadata or checkpoints, or with
// KindAgent (path unused) the node's agent record. Readers that look up
// many keys build each into one buffer they reuse; the key is SeriesKey's,
// MetaKey's, MarksKey's or AgentKey's.
func AppendKey(dst []byte, kind KeyKind, node, path string) []byte {
	dst = append(append(dst, nodesPrefix...), node...)
	switch kind {
	case KindAgent:
		return append(dst, agentSuffix...)
	case KindSeries:
		dst = append(dst, seriesPart...)
	case KindMeta:
		dst = append(dst, metaPart...)
	case KindMarks:
		dst = append(dst, marksPart...)
	}
	return append(dst, path...)
}

// MaxNodeKeys bounds the keys under one node's NodePrefix: its agent
// record, and per series its value, metadata and checkpoints.
const MaxNodeKeys = 3*MaxSeriesPerNode + 1

// ParseKey splits a key under AllNodesPrefix into its node, its kind and,
// for a series, its metadata or its checkpoints, its cgroup path.
func ParseKey(k []byte) (node string, kind KeyKind, path string, err error) {
	rest, ok := strings.CutPrefix(string(k), nodesPrefix)
	if !ok {
		return "", 0, "", fmt.Errorf("%w: not a node key: %q", ErrInvalid, k)
	}
	node, rest, ok = strings.Cut(rest, "/")
	switch {
	case !ok || node == "":
	case rest == "agent":
		return node, KindAgent, "", nil
	case strings.HasPrefix(rest, "series/"):
		return node, KindSeries, strings.TrimPrefix(rest, "series/"), nil
	case strings.HasPrefix(rest, "meta/"):
		return node, KindMeta, strings.TrimPrefix(rest, "meta/"), nil
	case strings.HasPrefix(rest, "marks/"):
		return node, KindMarks, strings.TrimPrefix(rest, "marks/"), nil
	}
	return "", 0, "", fmt.Errorf("%w: not a node key: %q", ErrInvalid, k)
}

// ParseSeriesKey splits a series key into node and path.
func ParseSeriesKey(k []byte) (node, path string, err error) {
	node, kind, path, err := ParseKey(k)
	if err == nil && kind != KindSeries {
		err = fmt.Errorf("%w: not a series key: %q", ErrInvalid, k)
	}
	return node, path, err
}

// ValidNode checks a node name: a lowercase DNS subdomain (RFC 1123), as
// Kubernetes node names are; hostnames are lowercased by the agent.
func ValidNode(node string) error {
	if node == "" || len(node) > MaxNodeName {
		return fmt.Errorf("%w: node name must be 1 to %d characters", ErrInvalid, MaxNodeName)
	}
	for i, label := range strings.Split(node, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: node name %q: label %d empty or longer than 63", ErrInvalid, node, i+1)
		}
		for j, c := range label {
			alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if !alnum && (c != '-' || j == 0 || j == len(label)-1) {
				return fmt.Errorf("%w: node name %q: not a lowercase DNS name", ErrInvalid, node)
			}
		}
	}
	return nil
}

// ValidPath checks a cgroup path: absolute, clean enough to be a key.
func ValidPath(path string) error {
	if path == "" || path[0] != '/' || len(path) > MaxPath {
		return fmt.Errorf("%w: cgroup path %q must start with / and be at most %d bytes", ErrInvalid, path, MaxPath)
	}
	if strings.ContainsRune(path, 0) {
		return fmt.Errorf("%w: cgroup path contains NUL", ErrInvalid)
	}
	return nil
}
