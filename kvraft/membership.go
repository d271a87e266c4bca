package kvraft

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/pennyhq/penny/kvraft/command"
)

// Member is one replica of the cluster.
type Member struct {
	ID uint64 `json:"id"`
	// PeerURL is where the replica's Raft transport listens.
	PeerURL string `json:"peer_url"`
	// APIURL is where the replica serves clients; each replica publishes its
	// own after it starts, so it may be empty for a while.
	APIURL string `json:"api_url"`
}

// Validate checks the member's ID and URLs.
func (m Member) Validate() error {
	if m.ID == 0 {
		return fmt.Errorf("%w: member id must be > 0", ErrInvalid)
	}
	if err := validateURL(m.PeerURL); err != nil {
		return fmt.Errorf("member %d peer url: %w", m.ID, err)
	}
	if m.APIURL != "" {
		if err := validateURL(m.APIURL); err != nil {
			return fmt.Errorf("member %d api url: %w", m.ID, err)
		}
	}
	return nil
}

func validateURL(s string) error {
	if len(s) > command.MaxURLSize {
		return fmt.Errorf("%w: url longer than %d bytes", ErrInvalid, command.MaxURLSize)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url %q must be http(s)://host:port", ErrInvalid, s)
	}
	return nil
}

// normalizeURL returns the form of a peer URL that two URLs reaching the
// same listener share: lower-case scheme and host, the scheme's default
// port made explicit, no trailing slash.
func normalizeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port) + strings.TrimRight(u.EscapedPath(), "/")
}

// ParseCluster parses "1=http://h:p,2=http://h:p" into members.
func ParseCluster(s string) ([]Member, error) {
	var out []Member
	seen := map[uint64]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, u, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%w: cluster entry %q: want ID=URL", ErrInvalid, part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%w: cluster entry %q: id must be a positive integer", ErrInvalid, part)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: member %d listed twice", ErrInvalid, id)
		}
		seen[id] = true
		m := Member{ID: id, PeerURL: u}
		if err := m.Validate(); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty cluster", ErrInvalid)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmpU64(a.ID, b.ID) })
	return out, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// membership is the replicated view of the cluster, part of the state
// machine and of its snapshots.
type membership struct {
	Members map[uint64]Member `json:"members"`
	// Removed holds IDs that may never join again (a Raft requirement).
	Removed map[uint64]bool `json:"removed,omitempty"`
	// QuotaBytes is the store quota the cluster enforces (0: none), set
	// by KindQuota entries. It travels with the membership in snapshots.
	QuotaBytes uint64 `json:"quota_bytes,omitempty"`
}

// view fingerprints the configuration a change is checked against: the
// members' IDs and peer URLs and the removed IDs (not the API URLs, which
// replicas publish at any time, nor the quota). A change checked against
// one view is cancelled if another change applied first
// (changeContext.Seen), so that two changes proposed through different
// replicas cannot both pass checks made against the same view. It is
// computed from the state alone, so replicas restored from a snapshot of
// any version agree on it; and no configuration comes back (a removed ID
// stays removed), so a view never repeats.
func (m *membership) view() uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, mem := range m.list() {
		binary.BigEndian.PutUint64(b[:], mem.ID)
		h.Write(b[:])
		h.Write([]byte(normalizeURL(mem.PeerURL)))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	removed := slices.Sorted(maps.Keys(m.Removed))
	for _, id := range removed {
		binary.BigEndian.PutUint64(b[:], id)
		h.Write(b[:])
	}
	return h.Sum64()
}

func newMembership() *membership {
	return &membership{Members: map[uint64]Member{}, Removed: map[uint64]bool{}}
}

func (m *membership) clone() *membership {
	c := newMembership()
	for k, v := range m.Members {
		c.Members[k] = v
	}
	for k, v := range m.Removed {
		c.Removed[k] = v
	}
	c.QuotaBytes = m.QuotaBytes
	return c
}

func (m *membership) list() []Member {
	out := make([]Member, 0, len(m.Members))
	for _, v := range m.Members {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmpU64(a.ID, b.ID) })
	return out
}

// check decides, from the state machine alone, whether a committed
// configuration change may be applied; seen is the view its proposer
// checked it against (nil: not known, as in changes of older versions and
// the initial members').
func (m *membership) check(cc *raftpb.ConfChange, mem Member, seen *uint64) error {
	if seen != nil && *seen != m.view() {
		return fmt.Errorf("%w: another change applied after this one was checked; check it again", ErrMembershipChange)
	}
	id := cc.GetNodeId()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		if m.Removed[id] {
			return fmt.Errorf("%w: %d", ErrIDRemoved, id)
		}
		if _, ok := m.Members[id]; ok {
			return fmt.Errorf("%w: %d", ErrMemberExists, id)
		}
		if mem.ID != id {
			return fmt.Errorf("%w: member context for %d names %d", ErrInvalid, id, mem.ID)
		}
		if err := mem.Validate(); err != nil {
			return err
		}
		u := normalizeURL(mem.PeerURL)
		for _, other := range m.Members {
			if normalizeURL(other.PeerURL) == u {
				return fmt.Errorf("%w: %s is member %d's", ErrPeerURLExists, mem.PeerURL, other.ID)
			}
		}
		return nil
	case raftpb.ConfChangeRemoveNode:
		if _, ok := m.Members[id]; !ok {
			return fmt.Errorf("%w: %d", ErrMemberNotFound, id)
		}
		if len(m.Members) == 1 {
			return fmt.Errorf("%w: cannot remove the last member", ErrInvalid)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported configuration change %v", ErrInvalid, cc.GetType())
}

// changeContext is a configuration change's context: the member it adds
// (none for a removal), and the view its proposer checked it against
// (Seen, membership.view; absent in changes of older versions and in the
// initial members', which are not held to it).
type changeContext struct {
	Member
	Seen *uint64 `json:"seen,omitempty"`
}

func decodeChangeContext(b []byte) (changeContext, error) {
	var c changeContext
	if len(b) == 0 {
		return c, nil // a removal from before contexts were written
	}
	if len(b) > 4*command.MaxURLSize {
		return c, fmt.Errorf("%w: member context of %d bytes", ErrInvalid, len(b))
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: member context: %w", ErrInvalid, err)
	}
	return c, nil
}

func encodeChangeContext(c changeContext) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode member: %w", err)
	}
	return b, nil
}
