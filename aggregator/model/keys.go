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
	prefix       = "penny/v1/"
	agentsPrefix = prefix + "agents/"
	seriesPrefix = prefix + "series/"

	// MaxNodeName is the longest node name (a DNS subdomain).
	MaxNodeName = 253
	// MaxPath is the longest cgroup path stored.
	MaxPath = 4096
)

// AgentKey is the key of a node's agent record.
func AgentKey(node string) []byte { return []byte(agentsPrefix + node) }

// SeriesKey is the key of one cgroup of a node.
func SeriesKey(node, path string) []byte { return []byte(seriesPrefix + node + "/" + path) }

// NodeSeriesPrefix selects every series of a node.
func NodeSeriesPrefix(node string) []byte { return []byte(seriesPrefix + node + "/") }

// AllSeriesPrefix selects every series.
func AllSeriesPrefix() []byte { return []byte(seriesPrefix) }

// AllAgentsPrefix selects every agent record.
func AllAgentsPrefix() []byte { return []byte(agentsPrefix) }

// ParseSeriesKey splits a series key into node and path.
func ParseSeriesKey(k []byte) (node, path string, err error) {
	rest, ok := strings.CutPrefix(string(k), seriesPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: not a series key: %q", ErrInvalid, k)
	}
	node, path, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: series key without path: %q", ErrInvalid, k)
	}
	return node, path, nil
}

// ParseAgentKey returns the node of an agent record key.
func ParseAgentKey(k []byte) (string, error) {
	node, ok := strings.CutPrefix(string(k), agentsPrefix)
	if !ok || node == "" {
		return "", fmt.Errorf("%w: not an agent key: %q", ErrInvalid, k)
	}
	return node, nil
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
