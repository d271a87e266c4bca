package kvraft

import (
	"fmt"
	"time"
)

// Consistency is the guarantee a read asks for.
type Consistency int

const (
	// Linearizable reads reflect every write that completed (anywhere)
	// before the read started. The replica obtains the leader's commit index
	// through Raft's ReadIndex, which the leader confirms with a quorum
	// heartbeat round, then waits until it has applied that index.
	Linearizable Consistency = iota
	// Bounded reads reflect every write that completed more than
	// MaxStaleness before the read started. The replica proves it locally:
	// at local time T it sent a ReadIndex that returned commit index C; once
	// it has applied C and now-T <= MaxStaleness, its state contains every
	// write acknowledged before T >= now-MaxStaleness. It keeps such a proof
	// fresh in the background while bounded reads arrive; when none is
	// fresh enough it obtains a new one, as a linearizable read does. Only
	// the elapsed time on the serving replica's monotonic clock matters, not
	// clock agreement between replicas.
	Bounded
	// Session reads reflect at least the state at MinIndex, typically the
	// index a write of the same client returned (read-your-writes), or the
	// index a previous read returned (monotonic reads). The replica waits
	// until it has applied MinIndex, up to the read's deadline.
	Session
	// Eventual reads are served from the replica's current state with no
	// wait. They may miss any number of recent writes; on one running
	// replica, successive reads never go back in time.
	Eventual
)

var consistencyNames = [...]string{"linearizable", "bounded", "session", "eventual"}

func (c Consistency) String() string {
	if c >= 0 && int(c) < len(consistencyNames) {
		return consistencyNames[c]
	}
	return fmt.Sprintf("Consistency(%d)", int(c))
}

// ParseConsistency parses the name of a consistency level.
func ParseConsistency(s string) (Consistency, error) {
	for i, n := range consistencyNames {
		if s == n {
			return Consistency(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown consistency %q (want linearizable, bounded, session or eventual)", ErrInvalid, s)
}

// ReadOptions selects the consistency of one read.
type ReadOptions struct {
	Consistency Consistency
	// MaxStaleness bounds how old a Bounded read may be; it must be > 0.
	MaxStaleness time.Duration
	// MinIndex is the index a Session read must observe; it must be > 0.
	MinIndex uint64
}

// Validate checks that the options are complete for their level.
func (o ReadOptions) Validate() error {
	switch o.Consistency {
	case Linearizable, Eventual:
	case Bounded:
		if o.MaxStaleness <= 0 {
			return fmt.Errorf("%w: bounded read needs a positive max staleness", ErrInvalid)
		}
	case Session:
		if o.MinIndex == 0 {
			return fmt.Errorf("%w: session read needs an index", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown consistency %d", ErrInvalid, o.Consistency)
	}
	return nil
}
