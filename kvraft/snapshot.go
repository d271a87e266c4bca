package kvraft

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pennyhq/penny/kvraft/kvstore"
)

var (
	// ErrBadSnapshot reports snapshot data that cannot be decoded.
	ErrBadSnapshot = errors.New("kvraft: bad snapshot data")
	// ErrSnapshotFormat reports a snapshot in a format this version cannot
	// read (it also matches ErrBadSnapshot).
	ErrSnapshotFormat = errors.New("kvraft: unsupported snapshot format")
)

// The snapshot header is snapshotPrefix, one format digit and a newline.
// Format 1 had no per-key mod indexes; format 2 adds them.
const (
	snapshotPrefix = "PNYKV"
	snapshotFormat = '2'
)

var snapshotMagic = []byte(snapshotPrefix + string(rune(snapshotFormat)) + "\n")

const maxSnapshotMeta = 1 << 20

// encodeSnapshot serializes the state machine: a magic header, the
// length-prefixed JSON membership, then the key-value pairs with their mod
// indexes.
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
	rest, ok := bytes.CutPrefix(b, []byte(snapshotPrefix))
	if !ok || len(rest) < 2 || rest[1] != '\n' {
		return nil, nil, fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	switch f := rest[0]; f {
	case snapshotFormat:
	case '1':
		// Mod indexes cannot be reconstructed deterministically: replicas
		// snapshot at different indexes.
		return nil, nil, fmt.Errorf("%w: %w: format 1 predates per-key mod indexes; "+
			"replace this member (remove it, wipe its data dir, add it under a new id)", ErrBadSnapshot, ErrSnapshotFormat)
	default:
		return nil, nil, fmt.Errorf("%w: %w: unknown format %q (this version reads format %c)", ErrBadSnapshot, ErrSnapshotFormat, f, snapshotFormat)
	}
	rest = rest[2:]
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
