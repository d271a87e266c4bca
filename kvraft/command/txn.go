package command

import (
	"encoding/binary"
	"fmt"
)

// CompareTarget is what a Compare examines.
type CompareTarget uint8

// Compare targets.
const (
	// TargetExists examines whether the key is present: CmpEqual holds if
	// it is, CmpNotEqual if it is not. No other operator applies.
	TargetExists CompareTarget = 1
	// TargetValue compares the key's value with Compare.Value, bytewise
	// (bytes.Compare). It is false for every operator on an absent key.
	TargetValue CompareTarget = 2
	// TargetModIndex compares the key's mod index (the index of the last
	// entry that wrote it, 0 if it is absent) with Compare.ModIndex.
	TargetModIndex CompareTarget = 3
)

func (t CompareTarget) String() string {
	switch t {
	case TargetExists:
		return "exists"
	case TargetValue:
		return "value"
	case TargetModIndex:
		return "mod_index"
	}
	return fmt.Sprintf("CompareTarget(%d)", uint8(t))
}

// CompareOp is the operator of a Compare. It reads "target Op operand":
// CmpLess holds if the key's value (or mod index) is less than the operand.
type CompareOp uint8

// Compare operators.
const (
	CmpEqual    CompareOp = 1
	CmpNotEqual CompareOp = 2
	CmpLess     CompareOp = 3
	CmpGreater  CompareOp = 4
)

func (o CompareOp) String() string {
	switch o {
	case CmpEqual:
		return "="
	case CmpNotEqual:
		return "!="
	case CmpLess:
		return "<"
	case CmpGreater:
		return ">"
	}
	return fmt.Sprintf("CompareOp(%d)", uint8(o))
}

// Compare is one condition of a Txn.
type Compare struct {
	Key    []byte
	Target CompareTarget
	Op     CompareOp
	// Value is the operand of TargetValue; it must be empty otherwise.
	Value []byte
	// ModIndex is the operand of TargetModIndex; it must be 0 otherwise.
	ModIndex uint64
}

// Txn is a conditional, atomic write: if every compare of If holds, the
// ops of Then are applied, otherwise those of Else, in order. An empty If
// always holds.
type Txn struct {
	If   []Compare
	Then []Op
	Else []Op
}

func (t Txn) elements() int { return len(t.If) + len(t.Then) + len(t.Else) }

// ValidateTxns checks txns against the limits without encoding them.
func ValidateTxns(txns []Txn) error { return validateTxns(txns, maxPayload) }

func validateTxns(txns []Txn, limit int) error {
	if len(txns) == 0 {
		return fmt.Errorf("%w: no transactions", ErrInvalid)
	}
	if len(txns) > MaxTxns {
		return fmt.Errorf("%w: %d transactions, limit %d", ErrTooLarge, len(txns), MaxTxns)
	}
	size, total := 0, 0
	for i, t := range txns {
		if err := validateTxn(t); err != nil {
			return fmt.Errorf("txn %d: %w", i, err)
		}
		size += txnSize(t)
		total += t.elements()
	}
	if total > MaxCommandOps {
		return fmt.Errorf("%w: %d compares and operations in all, limit %d", ErrTooLarge, total, MaxCommandOps)
	}
	if size > limit {
		return fmt.Errorf("%w: transactions of %d bytes, limit %d", ErrTooLarge, size, limit+payloadHeader)
	}
	return nil
}

func validateTxn(t Txn) error {
	n := t.elements()
	if n == 0 {
		return fmt.Errorf("%w: empty transaction", ErrInvalid)
	}
	if n > MaxTxnOps {
		return fmt.Errorf("%w: %d compares and operations, limit %d", ErrTooLarge, n, MaxTxnOps)
	}
	for i, c := range t.If {
		if err := ValidateCompare(c); err != nil {
			return fmt.Errorf("compare %d: %w", i, err)
		}
	}
	for i, op := range t.Then {
		if err := validateOp(op); err != nil {
			return fmt.Errorf("then op %d: %w", i, err)
		}
	}
	for i, op := range t.Else {
		if err := validateOp(op); err != nil {
			return fmt.Errorf("else op %d: %w", i, err)
		}
	}
	return nil
}

// ValidateCompare checks one compare.
func ValidateCompare(c Compare) error {
	if len(c.Key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(c.Key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(c.Key), MaxKeySize)
	}
	if c.Op < CmpEqual || c.Op > CmpGreater {
		return fmt.Errorf("%w: unknown operator %d", ErrInvalid, c.Op)
	}
	switch c.Target {
	case TargetExists:
		if c.Op != CmpEqual && c.Op != CmpNotEqual {
			return fmt.Errorf("%w: exists takes = or !=, not %v", ErrInvalid, c.Op)
		}
	case TargetValue:
		if len(c.Value) > MaxValueSize {
			return fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(c.Value), MaxValueSize)
		}
	case TargetModIndex:
	default:
		return fmt.Errorf("%w: unknown compare target %d", ErrInvalid, c.Target)
	}
	if c.Target != TargetValue && len(c.Value) != 0 {
		return fmt.Errorf("%w: a value with target %v", ErrInvalid, c.Target)
	}
	if c.Target != TargetModIndex && c.ModIndex != 0 {
		return fmt.Errorf("%w: a mod index with target %v", ErrInvalid, c.Target)
	}
	return nil
}

// compareSize is an upper bound on the encoded size of c.
func compareSize(c Compare) int { return 2 + 2*binary.MaxVarintLen64 + len(c.Key) + len(c.Value) }

// txnSize is an upper bound on the encoded size of t.
// TxnSize is an upper bound on the bytes t takes in an encoded command:
// writers that group transactions into one proposal keep the sum of their
// sizes within MaxTxnsBytes.
func TxnSize(t Txn) int { return txnSize(t) }

// MaxTxnsBytes is the largest sum of TxnSize over the transactions of one
// proposal.
const MaxTxnsBytes = maxPayload

// BatchBytes is what writers that group independent transactions into one
// proposal aim for: entries stay small when a single transaction does not
// need the whole MaxEntrySize.
const BatchBytes = 1 << 20

func txnSize(t Txn) int {
	n := binary.MaxVarintLen64 + opsSize(t.Then) + opsSize(t.Else)
	for _, c := range t.If {
		n += compareSize(c)
	}
	return n
}

// appendTxn appends t: a uvarint compare count followed by (target byte,
// operator byte, length-prefixed key, then a length-prefixed value for
// TargetValue or a uvarint mod index for TargetModIndex) per compare, then
// the op lists of Then and Else.
func appendTxn(b []byte, t Txn) []byte {
	b = binary.AppendUvarint(b, uint64(len(t.If)))
	for _, c := range t.If {
		b = append(b, byte(c.Target), byte(c.Op))
		b = appendBytes(b, c.Key)
		switch c.Target {
		case TargetValue:
			b = appendBytes(b, c.Value)
		case TargetModIndex:
			b = binary.AppendUvarint(b, c.ModIndex)
		}
	}
	b = appendOps(b, t.Then)
	return appendOps(b, t.Else)
}

// txns reads a txn count and the txns. Counts are bounded by the limits
// and by the remaining input before anything is allocated.
func (d *decoder) txns() []Txn {
	// A txn takes at least 3 bytes (three counts).
	n := d.count(MaxTxns, 3)
	if d.err != nil {
		return nil
	}
	if n == 0 {
		d.err = fmt.Errorf("%w: no transactions", ErrInvalid)
		return nil
	}
	txns := make([]Txn, n)
	budget := MaxCommandOps
	for i := range txns {
		t := &txns[i]
		// A compare takes at least 4 bytes, an op at least 3.
		t.If = d.compares(d.count(min(budget, MaxTxnOps), 4))
		budget -= len(t.If)
		t.Then = d.ops(d.count(min(budget, MaxTxnOps-len(t.If)), 3))
		budget -= len(t.Then)
		t.Else = d.ops(d.count(min(budget, MaxTxnOps-len(t.If)-len(t.Then)), 3))
		budget -= len(t.Else)
		if d.err != nil {
			d.err = fmt.Errorf("txn %d: %w", i, d.err)
			return nil
		}
	}
	return txns
}

// compares reads n compares.
func (d *decoder) compares(n int) []Compare {
	if d.err != nil || n == 0 {
		return nil
	}
	cs := make([]Compare, n)
	for i := range cs {
		c := &cs[i]
		c.Target = CompareTarget(d.byte())
		c.Op = CompareOp(d.byte())
		c.Key = d.bytes(MaxKeySize)
		switch c.Target {
		case TargetValue:
			c.Value = d.bytes(MaxValueSize)
		case TargetModIndex:
			c.ModIndex = d.uvarint()
		}
		if d.err != nil {
			return nil
		}
		if err := ValidateCompare(*c); err != nil {
			d.err = fmt.Errorf("compare %d: %w", i, err)
			return nil
		}
	}
	return cs
}
