package command

import (
	"encoding/binary"
	"errors"
	"testing"
)

func bigOps(n int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = Op{Type: OpPut, Key: []byte{'k', byte(i)}, Value: make([]byte, MaxValueSize)}
	}
	return ops
}

// TestEntryBound checks that nothing over MaxEntrySize is proposed, while
// larger entries that earlier versions wrote (up to MaxCommandSize) still
// decode from a WAL.
func TestEntryBound(t *testing.T) {
	ops := bigOps(5) // 5 MiB: over the 4 MiB entry bound
	if err := ValidateOps(ops); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ValidateOps of 5 MiB: %v, want ErrTooLarge", err)
	}
	if _, err := Encode(&Command{Kind: KindBatch, Ops: ops}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode of 5 MiB: %v, want ErrTooLarge", err)
	}
	txns := []Txn{{Then: ops[:2]}, {Then: ops[2:4]}, {Else: ops[4:]}}
	if err := ValidateTxns(txns); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ValidateTxns of 5 MiB: %v, want ErrTooLarge", err)
	}
	sum := 0
	for _, txn := range txns {
		sum += TxnSize(txn)
	}
	if sum <= MaxTxnsBytes {
		t.Fatalf("TxnSize sums to %d, within MaxTxnsBytes %d", sum, MaxTxnsBytes)
	}
	if _, err := Encode(&Command{Kind: KindBatch, Ops: ops[:3]}); err != nil {
		t.Fatalf("Encode of 3 MiB: %v", err)
	}

	// An entry an earlier version proposed: 5 MiB, encoded by hand.
	legacy := []byte{version, byte(KindBatch)}
	legacy = binary.AppendUvarint(legacy, 9)
	legacy = appendOps(legacy, ops)
	got, err := Decode(legacy)
	if err != nil {
		t.Fatalf("Decode of a 5 MiB legacy entry: %v", err)
	}
	if len(got.Ops) != 5 {
		t.Fatalf("decoded %d ops, want 5", len(got.Ops))
	}
}
