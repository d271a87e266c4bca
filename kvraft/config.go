package kvraft

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/kvraft/kvstore"
)

// The defaults of Config.SnapshotBytes and SnapshotCatchUpBytes.
const (
	DefaultSnapshotBytes        = 64 << 20
	DefaultSnapshotCatchUpBytes = 16 << 20
	// DefaultMaxFiles is how many old snapshot and WAL files a member keeps
	// of each: fewer than etcd's 5, since the data directory is not a
	// backup and, at 10,000 series, five 64 MiB WAL segments and five
	// snapshots took it past 500 MB (docs/kvraft.md).
	DefaultMaxFiles = 3
	// DefaultMaxInflightBytes bounds the bytes of append messages in flight
	// to each follower: what a leader holds for a slow follower, whatever
	// the messages' count. At 16 MiB a follower 100 ms away still receives
	// 160 MB/s, ten times what 10,000 series a second write.
	DefaultMaxInflightBytes = 16 << 20
)

// maxMemberID is the largest member ID: proposal IDs embed 16 bits of it.
const maxMemberID = 1<<16 - 1

// Config configures a Node. Complete fills zero durations and counts with
// the defaults documented on each field; Start calls it.
type Config struct {
	// ID is this replica's member ID (> 0), unique for the cluster's life.
	ID uint64
	// DataDir holds the WAL and snapshots.
	DataDir string
	// InitialCluster lists the members a new cluster starts with; it must
	// include ID. On restart (DataDir holds a log) it is only used to seed
	// the transport; the membership comes from the log.
	InitialCluster []Member
	// Join starts a member that was added to a running cluster with
	// AddMember: it starts with an empty log and learns the membership from
	// the leader. InitialCluster must then list the current members.
	Join bool
	// ForceNewCluster restarts this member as a one-member cluster from
	// its data dir, keeping its whole log, when the cluster lost
	// its quorum for good (etcd's --force-new-cluster): the other members
	// are removed by entries appended to its log. Add members back one at
	// a time afterwards, under new ids, with wiped data dirs. Use it once:
	// a member restarted with it again would remove the members added
	// back since.
	ForceNewCluster bool
	// APIURL is the client URL this replica publishes in the membership.
	APIURL string
	// NewTransport builds the peer transport.
	NewTransport TransportFactory

	// TickInterval is the Raft tick (100ms).
	TickInterval time.Duration
	// ElectionTicks and HeartbeatTicks are in ticks (10 and 1).
	ElectionTicks  int
	HeartbeatTicks int
	// SnapshotCount is how many applied entries trigger a snapshot (10000).
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries are kept in memory behind a
	// snapshot for slow followers (5000).
	SnapshotCatchUpEntries uint64
	// SnapshotBytes triggers a snapshot too once the entries applied since
	// the last one hold that many bytes and at least as many as the store
	// (64 MiB), and SnapshotCatchUpBytes bounds the bytes of the entries
	// kept behind it (16 MiB): the in-memory log stays within about their
	// sum (the store's size past SnapshotBytes) whatever the entries
	// weigh, where counts alone let large entries pile up.
	SnapshotBytes        uint64
	SnapshotCatchUpBytes uint64
	// MaxSnapshotFiles and MaxWALFiles bound the old snapshot and WAL
	// files kept on disk (DefaultMaxFiles each; etcd's --max-snapshots
	// and --max-wals keep 5): the data directory holds about
	// MaxSnapshotFiles snapshots of the store and MaxWALFiles 64 MiB WAL
	// segments, plus those in use.
	MaxSnapshotFiles uint
	MaxWALFiles      uint
	// MaxSizePerMsg bounds one append message (1 MiB); MaxInflightMsgs the
	// append messages in flight per follower (256), and MaxInflightBytes
	// their bytes (DefaultMaxInflightBytes; at least MaxSizePerMsg): the
	// count alone let a leader hold 256 MiB for each slow follower.
	MaxSizePerMsg    uint64
	MaxInflightMsgs  int
	MaxInflightBytes uint64
	// QuotaBytes bounds the store's bytes (keys plus values): a write that
	// would take it past the quota fails with ErrNoSpace, as etcd's
	// --quota-backend-bytes (DefaultQuotaBytes, 256 MiB; negative: no
	// quota). The leader's quota applies to the whole cluster: it is
	// replicated, so every replica refuses the same writes; give every
	// member the same value.
	QuotaBytes int64

	// BoundedRefresh is how often the node renews its bounded-staleness proof
	// while bounded reads arrive (TickInterval).
	BoundedRefresh time.Duration
	// ReadIndexTimeout bounds the ReadIndex rounds of one read (5s).
	ReadIndexTimeout time.Duration
	// RequestTimeout applies to calls whose context has no deadline (5s).
	RequestTimeout time.Duration

	// Watcher, if set, follows every write to the store as it is applied,
	// and is reset from the whole store when a snapshot replaces it: an
	// index of the store that View's functions read at the same state
	// (kvstore.Watcher says what it must do).
	Watcher kvstore.Watcher

	// Logger receives the node's logs (discarded if nil).
	Logger *slog.Logger
	// Registerer, if set, receives the node's metrics.
	Registerer prometheus.Registerer
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.TickInterval == 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = 10000
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = 5000
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.SnapshotCatchUpBytes == 0 {
		c.SnapshotCatchUpBytes = DefaultSnapshotCatchUpBytes
	}
	if c.MaxSnapshotFiles == 0 {
		c.MaxSnapshotFiles = DefaultMaxFiles
	}
	if c.MaxWALFiles == 0 {
		c.MaxWALFiles = DefaultMaxFiles
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 256
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.QuotaBytes == 0 {
		c.QuotaBytes = DefaultQuotaBytes
	}
	if c.BoundedRefresh == 0 {
		c.BoundedRefresh = c.TickInterval
	}
	if c.ReadIndexTimeout == 0 {
		c.ReadIndexTimeout = 5 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a completed configuration; it changes nothing.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == 0 || c.ID > maxMemberID {
		errs = append(errs, fmt.Errorf("id must be in [1, %d]", maxMemberID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.NewTransport == nil {
		errs = append(errs, errors.New("a transport is required"))
	}
	self := false
	for _, m := range c.InitialCluster {
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
		}
		self = self || m.ID == c.ID
	}
	if !self {
		errs = append(errs, fmt.Errorf("initial cluster must include this member (%d)", c.ID))
	}
	if c.ForceNewCluster && c.Join {
		errs = append(errs, errors.New("force new cluster and join exclude each other"))
	}
	if c.APIURL != "" {
		if err := validateURL(c.APIURL); err != nil {
			errs = append(errs, fmt.Errorf("api url: %w", err))
		}
	}
	if c.TickInterval < time.Millisecond {
		errs = append(errs, errors.New("tick interval must be >= 1ms"))
	}
	if c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks {
		errs = append(errs, errors.New("election ticks must exceed heartbeat ticks, both > 0"))
	}
	if c.SnapshotCatchUpEntries > c.SnapshotCount*10 {
		errs = append(errs, errors.New("snapshot catch-up entries must not exceed 10x the snapshot count"))
	}
	if c.MaxInflightBytes < c.MaxSizePerMsg {
		errs = append(errs, fmt.Errorf("max in-flight bytes %d must be at least the largest message (%d)", c.MaxInflightBytes, c.MaxSizePerMsg))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kvraft config: %w", err)
	}
	return nil
}
