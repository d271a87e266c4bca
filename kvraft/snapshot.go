package kvraft

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pennyhq/penny/kvraft/kvstore"
)

// ErrBadSnapshot reports snapshot data that cannot be decoded.
var ErrBadSnapshot = errors.New("kvraft: bad snapshot data")

var snapshotMagic = []byte("PNYKV1\n")

const maxSnapshotMeta = 1 << 20

// encodeSnapshot serializes the state machine: a magic header, the
// length-prefixed JSON membership, then the key-value pairs.
func encodeSnapshot(m *membership, kv *kvstore.Store) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode membership: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(snapshotMagic) + binary.MaxVarintLen64 + len(meta) + int(kv.Bytes()) + 4*kv.Len() + 16)
	buf.Write(snapshotMagic)
	buf.Write(binary.AppendUvarint(nil, uint64(len(meta))))
	buf.Write(meta)
	if _, err := kv.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeSnapshot(b []byte) (*membership, *kvstore.Store, error) {
	rest, ok := bytes.CutPrefix(b, snapshotMagic)
	if !ok {
		return nil, nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxSnapshotMeta || n > uint64(len(rest)-k) {
		return nil, nil, fmt.Errorf("%w: bad membership length", ErrBadSnapshot)
	}
	m := newMembership()
	if err := json.Unmarshal(rest[k:k+int(n)], m); err != nil {
		return nil, nil, fmt.Errorf("%w: membership: %w", ErrBadSnapshot, err)
	}
	if m.Members == nil {
		m.Members = map[uint64]Member{}
	}
	if m.Removed == nil {
		m.Removed = map[uint64]bool{}
	}
	for id, mem := range m.Members {
		if mem.ID != id {
			return nil, nil, fmt.Errorf("%w: member key %d holds id %d", ErrBadSnapshot, id, mem.ID)
		}
	}
	kv, err := kvstore.Decode(rest[k+int(n):])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return m, kv, nil
}
