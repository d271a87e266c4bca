package kvraft

import (
	"context"
	"fmt"

	"github.com/pennyhq/penny/kvraft/command"
)

// Txn is a conditional, atomic write evaluated when it is applied: if every
// compare of If holds, the ops of Then are applied in order, otherwise those
// of Else. An empty If always holds; either branch may be empty.
type Txn = command.Txn

// Compare is one condition of a Txn; build it with CompareExists,
// CompareMissing, CompareValue or CompareModIndex.
type Compare = command.Compare

// CompareTarget is what a Compare examines.
type CompareTarget = command.CompareTarget

// Compare targets.
const (
	TargetExists   = command.TargetExists
	TargetValue    = command.TargetValue
	TargetModIndex = command.TargetModIndex
)

// CompareOp is a Compare's operator; it reads "key's target Op operand".
type CompareOp = command.CompareOp

// Compare operators.
const (
	CmpEqual    = command.CmpEqual
	CmpNotEqual = command.CmpNotEqual
	CmpLess     = command.CmpLess
	CmpGreater  = command.CmpGreater
)

// Limits on transactions, checked before anything is proposed.
const (
	// MaxTxnOps bounds the compares plus ops (both branches) of one Txn.
	MaxTxnOps = command.MaxTxnOps
	// MaxTxns bounds the transactions of one Txns call.
	MaxTxns = command.MaxTxns
	// MaxTxnsOps bounds the compares plus ops of all the transactions of
	// one Txns call.
	MaxTxnsOps = command.MaxCommandOps
	// MaxEntryBytes bounds one proposal's encoded command (one Raft
	// entry): 4 MiB.
	MaxEntryBytes = command.MaxEntrySize
	// MaxTxnsBytes bounds the sum of TxnSize over the transactions of one
	// Txns call, so that they fit in one entry.
	MaxTxnsBytes = command.MaxTxnsBytes
	// BatchBytes (1 MiB) is what writers that group independent
	// transactions into one Txns call aim for; a single transaction may
	// be larger, up to MaxTxnsBytes.
	BatchBytes = command.BatchBytes
)

// TxnSize is an upper bound on the bytes txn takes in a proposal; writers
// that group transactions keep the sum within MaxTxnsBytes.
func TxnSize(txn Txn) int { return command.TxnSize(txn) }

// CompareExists holds if key is present.
func CompareExists(key []byte) Compare {
	return Compare{Key: key, Target: TargetExists, Op: CmpEqual}
}

// CompareMissing holds if key is absent.
func CompareMissing(key []byte) Compare {
	return Compare{Key: key, Target: TargetExists, Op: CmpNotEqual}
}

// CompareValue holds if key is present and its value compares to value as
// op says, bytewise. It never holds for an absent key, whatever op is.
func CompareValue(key []byte, op CompareOp, value []byte) Compare {
	return Compare{Key: key, Target: TargetValue, Op: op, Value: value}
}

// CompareModIndex holds if key's mod index (the index of the log entry
// that last wrote it, 0 if it is absent) compares to index as op says.
func CompareModIndex(key []byte, op CompareOp, index uint64) Compare {
	return Compare{Key: key, Target: TargetModIndex, Op: op, ModIndex: index}
}

// TxnResult is the outcome of Txn.
type TxnResult struct {
	// Index is the index at which the txn committed; every key it wrote
	// has this mod index.
	Index uint64
	// Succeeded reports that the compares held and Then was applied;
	// otherwise Else was.
	Succeeded bool
}

// Txn proposes txn, which every replica evaluates and applies atomically
// when it applies the entry: the compares see the state left by every
// entry before it, and no reader sees part of its writes. It returns once
// this replica has applied it. A timed-out txn may still commit later.
func (n *Node) Txn(ctx context.Context, txn Txn) (TxnResult, error) {
	idx, ok, err := n.Txns(ctx, []Txn{txn})
	if err != nil {
		return TxnResult{}, err
	}
	return TxnResult{Index: idx, Succeeded: ok[0]}, nil
}

// Txns proposes several independent transactions as one Raft entry and
// returns its index and, per txn, whether its compares held. At apply time
// the txns are evaluated in order, each atomically as by Txn: a txn's
// compares see the writes of the txns before it in the slice, and whether
// one txn's compares hold does not stop any other from being evaluated and
// applied. The entry as a whole is atomic: readers see the writes of all
// the txns or of none, and all of them commit or (on error) possibly none.
//
// A txn that breaks a limit fails the whole call before anything is
// proposed.
func (n *Node) Txns(ctx context.Context, txns []Txn) (uint64, []bool, error) {
	if err := command.ValidateTxns(txns); err != nil {
		return 0, nil, wrapCommandErr(err)
	}
	if err := n.checkQuota(txnsMaxGrowth(txns), func() int64 { return n.kv.TxnsDelta(txns) }); err != nil {
		return 0, nil, err
	}
	res, err := n.propose(ctx, &command.Command{Kind: command.KindTxn, Txns: txns})
	if err != nil {
		return 0, nil, err
	}
	if len(res.succeeded) != len(txns) {
		return 0, nil, fmt.Errorf("kvraft: %d txn outcomes for %d txns at index %d", len(res.succeeded), len(txns), res.index)
	}
	return res.index, res.succeeded, nil
}
