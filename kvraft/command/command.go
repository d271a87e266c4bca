package command

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits on what a single proposal may carry. They bound memory on decode and
// keep one Raft entry well below the transport's message size limits.
const (
	// MaxKeySize is the largest key, in bytes.
	MaxKeySize = 4 << 10
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 1 << 20
	// MaxBatchOps is the largest number of operations in one batch.
	MaxBatchOps = 10000
	// MaxTxnOps is the largest number of compares plus operations (both
	// branches) in one transaction: a transaction is as large an atomic
	// unit as a batch.
	MaxTxnOps = MaxBatchOps
	// MaxTxns is the largest number of transactions in one command.
	MaxTxns = 1000
	// MaxCommandOps is the largest number of compares plus operations in
	// all the transactions of one command.
	MaxCommandOps = 5 * MaxBatchOps
	// MaxEntrySize is the largest encoded command a node proposes, in
	// bytes: one Raft entry. It fits a 1.5 MiB client request (etcd's
	// --max-request-bytes) with its encoding, and the largest update of one
	// node the aggregator's model allows (a keyframe of 1,999 series with
	// pod metadata measured 3.2 MB; 1,666 are allowed now), and keeps the
	// in-memory Raft log, which holds thousands of entries, a quarter of
	// what it was.
	MaxEntrySize = 4 << 20
	// MaxCommandSize is the largest encoded command Decode accepts, in
	// bytes: the entry bound of earlier versions, so that entries they
	// wrote still replay from a WAL. Nothing larger than MaxEntrySize is
	// proposed any more.
	MaxCommandSize = 16 << 20
	// MaxURLSize is the largest member URL, in bytes.
	MaxURLSize = 1 << 10
)

// version is the first byte of every encoded command.
const version byte = 1

var (
	// ErrInvalid reports a command that violates the limits or is malformed.
	ErrInvalid = errors.New("command: invalid")
	// ErrTooLarge reports a command or field over one of the size limits.
	ErrTooLarge = errors.New("command: too large")
)

// OpType is the kind of one operation in a batch.
type OpType uint8

// Operation types.
const (
	OpPut    OpType = 1
	OpDelete OpType = 2
)

func (t OpType) String() string {
	switch t {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("OpType(%d)", uint8(t))
}

// Op is one write in a batch. Value is ignored for OpDelete.
type Op struct {
	Type  OpType
	Key   []byte
	Value []byte
}

// Kind is the type of a command.
type Kind uint8

// Command kinds.
const (
	// KindBatch applies Ops atomically.
	KindBatch Kind = 1
	// KindMemberAttr sets the API URL that member MemberID advertises.
	KindMemberAttr Kind = 2
	// KindTxn evaluates Txns in order, each atomically and independently
	// of the outcome of the others.
	KindTxn Kind = 3
	// KindQuota sets the store's quota in bytes (QuotaBytes, 0: none),
	// which every replica enforces when it applies later entries.
	KindQuota Kind = 4
)

// Command is one replicated proposal.
type Command struct {
	// ID identifies the proposal so the proposer can match it when it is
	// applied. It is not interpreted by the state machine.
	ID   uint64
	Kind Kind
	// Ops is set for KindBatch.
	Ops []Op
	// Txns is set for KindTxn.
	Txns []Txn
	// MemberID and APIURL are set for KindMemberAttr.
	MemberID uint64
	APIURL   string
	// QuotaBytes is set for KindQuota.
	QuotaBytes uint64
}

// ValidateOps checks ops against the limits without encoding them.
func ValidateOps(ops []Op) error { return validateOps(ops, maxPayload) }

func validateOps(ops []Op, limit int) error {
	if len(ops) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	if len(ops) > MaxBatchOps {
		return fmt.Errorf("%w: %d operations, limit %d", ErrTooLarge, len(ops), MaxBatchOps)
	}
	size := 0
	for i, op := range ops {
		if err := validateOp(op); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		size += opSize(op)
	}
	if size > limit {
		return fmt.Errorf("%w: batch of %d bytes, limit %d", ErrTooLarge, size, limit+payloadHeader)
	}
	return nil
}

// maxPayload bounds the encoded size of a command's operations, leaving
// room for its header within MaxEntrySize; maxDecodePayload does the same
// within MaxCommandSize for entries read back from the log.
const (
	payloadHeader    = 64
	maxPayload       = MaxEntrySize - payloadHeader
	maxDecodePayload = MaxCommandSize - payloadHeader
)

// opSize is an upper bound on the encoded size of op.
func opSize(op Op) int { return 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value) }

func validateOp(op Op) error {
	switch op.Type {
	case OpPut:
		if len(op.Value) > MaxValueSize {
			return fmt.Errorf("%w: value of %d bytes, limit %d", ErrTooLarge, len(op.Value), MaxValueSize)
		}
	case OpDelete:
	default:
		return fmt.Errorf("%w: unknown op type %d", ErrInvalid, op.Type)
	}
	if len(op.Key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(op.Key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(op.Key), MaxKeySize)
	}
	return nil
}

// Validate checks c against the limits of a proposal.
func (c *Command) Validate() error { return c.validate(maxPayload) }

func (c *Command) validate(limit int) error {
	switch c.Kind {
	case KindBatch:
		return validateOps(c.Ops, limit)
	case KindTxn:
		return validateTxns(c.Txns, limit)
	case KindMemberAttr:
		if c.MemberID == 0 {
			return fmt.Errorf("%w: member id 0", ErrInvalid)
		}
		if len(c.APIURL) > MaxURLSize {
			return fmt.Errorf("%w: url of %d bytes", ErrTooLarge, len(c.APIURL))
		}
		return nil
	case KindQuota:
		return nil
	}
	return fmt.Errorf("%w: unknown kind %d", ErrInvalid, c.Kind)
}

// Encode validates c and returns its encoding.
//
// Layout: version byte, kind byte, uvarint ID, then for KindBatch an op
// list: a uvarint op count followed by (type byte, uvarint key length, key,
// uvarint value length, value) per op; for KindTxn a uvarint txn count
// followed by a compare list and two op lists (then, else) per txn (see
// appendTxn); for KindMemberAttr a uvarint member ID and a length-prefixed
// URL; for KindQuota a uvarint quota.
func Encode(c *Command) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := 2 + binary.MaxVarintLen64*3 + len(c.APIURL) + opsSize(c.Ops)
	for _, t := range c.Txns {
		n += txnSize(t)
	}
	b := make([]byte, 0, n)
	b = append(b, version, byte(c.Kind))
	b = binary.AppendUvarint(b, c.ID)
	switch c.Kind {
	case KindBatch:
		b = appendOps(b, c.Ops)
	case KindTxn:
		b = binary.AppendUvarint(b, uint64(len(c.Txns)))
		for _, t := range c.Txns {
			b = appendTxn(b, t)
		}
	case KindMemberAttr:
		b = binary.AppendUvarint(b, c.MemberID)
		b = appendBytes(b, []byte(c.APIURL))
	case KindQuota:
		b = binary.AppendUvarint(b, c.QuotaBytes)
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: command of %d bytes, limit %d", ErrTooLarge, len(b), MaxEntrySize)
	}
	return b, nil
}

func opsSize(ops []Op) int {
	n := binary.MaxVarintLen64
	for _, op := range ops {
		n += opSize(op)
	}
	return n
}

func appendOps(b []byte, ops []Op) []byte {
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, op := range ops {
		b = append(b, byte(op.Type))
		b = appendBytes(b, op.Key)
		if op.Type == OpPut {
			b = appendBytes(b, op.Value)
		} else {
			b = binary.AppendUvarint(b, 0)
		}
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Decode parses an encoded command. Keys and values of the result alias b.
func Decode(b []byte) (*Command, error) {
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	d := decoder{b: b}
	if v := d.byte(); v != version {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("%w: unknown version %d", ErrInvalid, v)
	}
	c := &Command{Kind: Kind(d.byte())}
	c.ID = d.uvarint()
	switch c.Kind {
	case KindBatch:
		n := d.count(MaxBatchOps, 3)
		if d.err == nil && n == 0 {
			return nil, fmt.Errorf("%w: op count 0", ErrInvalid)
		}
		c.Ops = d.ops(n)
	case KindTxn:
		c.Txns = d.txns()
	case KindMemberAttr:
		c.MemberID = d.uvarint()
		c.APIURL = string(d.bytes(MaxURLSize))
	case KindQuota:
		c.QuotaBytes = d.uvarint()
	default:
		if d.err == nil {
			return nil, fmt.Errorf("%w: unknown kind %d", ErrInvalid, c.Kind)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(d.b))
	}
	if err := c.validate(maxDecodePayload); err != nil {
		return nil, err
	}
	return c, nil
}

type decoder struct {
	b   []byte
	err error
}

// count reads an element count, bounded by limit and by the remaining
// input given that each element takes at least minSize bytes, so that what
// the count sizes is bounded before it is allocated.
func (d *decoder) count(limit, minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) {
		d.err = fmt.Errorf("%w: count %d, limit %d", ErrInvalid, n, limit)
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.err = fmt.Errorf("%w: count %d exceeds the remaining %d bytes", ErrInvalid, n, len(d.b))
		return 0
	}
	return int(n)
}

// ops reads n ops.
func (d *decoder) ops(n int) []Op {
	if d.err != nil || n == 0 {
		return nil
	}
	ops := make([]Op, n)
	for i := range ops {
		op := &ops[i]
		op.Type = OpType(d.byte())
		op.Key = d.bytes(MaxKeySize)
		op.Value = d.bytes(MaxValueSize)
		if d.err != nil {
			return nil
		}
		if op.Type == OpDelete {
			op.Value = nil
		}
		if err := validateOp(*op); err != nil {
			d.err = fmt.Errorf("op %d: %w", i, err)
			return nil
		}
	}
	return ops
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrInvalid, what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("header")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.err = fmt.Errorf("%w: field of %d bytes, limit %d", ErrTooLarge, n, limit)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("field")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
