package kvstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/google/btree"

	"github.com/pennyhq/penny/kvraft/command"
)

// ErrCorrupt reports a snapshot encoding that cannot be decoded.
var ErrCorrupt = errors.New("kvstore: corrupt snapshot")

// KV is one key, its value and its mod index.
type KV struct {
	Key   []byte
	Value []byte
	// ModIndex is the index of the log entry that last wrote the key.
	ModIndex uint64
}

func less(a, b KV) bool { return bytes.Compare(a.Key, b.Key) < 0 }

// Store is an ordered key-value map. The zero value is not usable; call New.
type Store struct {
	mu    sync.RWMutex
	tree  *btree.BTreeG[KV]
	bytes int64 // sum of key and value sizes
	// watcher follows the writes (nil: none). A Clone has none.
	watcher Watcher
}

// Watcher follows a store's writes as they are applied, to keep an index
// of them: Put and Delete run under the store's write lock, in the order
// of the writes, so a reader that holds the lock of the state machine the
// store belongs to sees the index and the store at one point. They must be
// quick and must not call back into the store. The slices they get are the
// store's own: a watcher may keep them and must not modify them.
type Watcher interface {
	// Reset drops what the watcher holds and reads every pair of s (with
	// Ascend): s replaces the store it followed, as after a snapshot.
	Reset(s *Store)
	// Put reports that kv was written (a new key, or a new value).
	Put(kv KV)
	// Delete reports that key, which held a value, was deleted.
	Delete(key []byte)
}

// Watch makes w follow s's writes from now on, and resets it to s. A nil w
// stops the watching.
func (s *Store) Watch(w Watcher) {
	s.mu.Lock()
	s.watcher = w
	s.mu.Unlock()
	if w != nil {
		w.Reset(s)
	}
}

// Ascend calls fn on the pairs with start <= key < end in key order (a nil
// end means no upper bound) until fn returns false. It holds the read
// lock: fn must not write to s.
func (s *Store) Ascend(start, end []byte, fn func(KV) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.ascend(start, end, fn)
}

func (s *Store) ascend(start, end []byte, fn func(KV) bool) {
	if end == nil {
		s.tree.AscendGreaterOrEqual(KV{Key: start}, fn)
	} else {
		s.tree.AscendRange(KV{Key: start}, KV{Key: end}, fn)
	}
}

const degree = 32

// New returns an empty store.
func New() *Store {
	return &Store{tree: btree.NewG(degree, less)}
}

// Apply applies ops, written by the log entry at index, atomically: a
// concurrent reader sees all of them or none. Every key put gets mod index
// index. Keys and values are copied, so ops may alias a buffer the caller
// reuses.
func (s *Store) Apply(ops []command.Op, index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(ops, index)
}

func (s *Store) apply(ops []command.Op, index uint64) {
	for _, op := range ops {
		switch op.Type {
		case command.OpPut:
			kv := KV{Key: bytes.Clone(op.Key), Value: bytes.Clone(op.Value), ModIndex: index}
			if kv.Value == nil {
				kv.Value = []byte{}
			}
			if old, ok := s.tree.ReplaceOrInsert(kv); ok {
				s.bytes -= int64(len(old.Key) + len(old.Value))
			}
			s.bytes += int64(len(kv.Key) + len(kv.Value))
			if s.watcher != nil {
				s.watcher.Put(kv)
			}
		case command.OpDelete:
			if old, ok := s.tree.Delete(KV{Key: op.Key}); ok {
				s.bytes -= int64(len(old.Key) + len(old.Value))
				if s.watcher != nil {
					s.watcher.Delete(old.Key)
				}
			}
		}
	}
}

// ApplyTxns evaluates txns, written by the log entry at index, in order and
// reports which ones took their Then branch. Each txn's compares see the
// writes of the txns before it; the txns are otherwise independent. All
// of their writes are applied atomically: a concurrent reader sees all of
// them or none.
func (s *Store) ApplyTxns(txns []command.Txn, index uint64) []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	succeeded := make([]bool, len(txns))
	for i, t := range txns {
		succeeded[i] = s.holds(t.If)
		if succeeded[i] {
			s.apply(t.Then, index)
		} else {
			s.apply(t.Else, index)
		}
	}
	return succeeded
}

// holds reports whether every compare holds. Callers hold s.mu.
func (s *Store) holds(cmps []command.Compare) bool {
	for _, c := range cmps {
		kv, found := s.tree.Get(KV{Key: c.Key})
		if !evaluate(c, kv, found) {
			return false
		}
	}
	return true
}

// evaluate reports whether c holds for a key whose state is kv (found) or
// which is absent.
func evaluate(c command.Compare, kv KV, found bool) bool {
	var cmp int
	switch c.Target {
	case command.TargetExists:
		cmp = 1
		if found {
			cmp = 0
		}
	case command.TargetValue:
		if !found {
			return false // an absent key has no value to compare, as in etcd
		}
		cmp = bytes.Compare(kv.Value, c.Value)
	case command.TargetModIndex:
		// An absent key has mod index 0.
		cmp = compareUint(kv.ModIndex, c.ModIndex)
	default:
		return false
	}
	switch c.Op {
	case command.CmpEqual:
		return cmp == 0
	case command.CmpNotEqual:
		return cmp != 0
	case command.CmpLess:
		return cmp < 0
	case command.CmpGreater:
		return cmp > 0
	}
	return false
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Get returns key's value and mod index. The returned slices must not be
// modified.
func (s *Store) Get(key []byte) (KV, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Get(KV{Key: key})
}

// Range returns up to limit pairs with start <= key < end in key order. A nil
// end means no upper bound; limit <= 0 means no limit. more reports whether
// pairs past the limit exist. The returned slices must not be modified.
func (s *Store) Range(start, end []byte, limit int) (items []KV, more bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.ascend(start, end, func(kv KV) bool {
		if limit > 0 && len(items) == limit {
			more = true
			return false
		}
		items = append(items, kv)
		return true
	})
	return items, more
}

// PrefixEnd returns the smallest key greater than every key with the given
// prefix, or nil if there is none (the prefix is empty or all 0xff).
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len()
}

// Bytes returns the total size of keys and values.
func (s *Store) Bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes
}

// Clone returns a copy of s in O(1); later writes to either do not affect
// the other.
func (s *Store) Clone() *Store {
	s.mu.Lock() // Clone mutates the tree's copy-on-write context.
	defer s.mu.Unlock()
	return &Store{tree: s.tree.Clone(), bytes: s.bytes}
}

// EncodedSize returns the exact number of bytes WriteTo writes, in one
// pass over the keys that reads no value. Call it on a Clone, which no
// write changes between it and WriteTo.
func (s *Store) EncodedSize() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := int64(uvarintLen(uint64(s.tree.Len())))
	s.tree.Ascend(func(kv KV) bool {
		n += int64(uvarintLen(uint64(len(kv.Key))) + len(kv.Key) +
			uvarintLen(uint64(len(kv.Value))) + len(kv.Value) + uvarintLen(kv.ModIndex))
		return true
	})
	return n
}

// uvarintLen is the length of v's uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// WriteTo writes the snapshot encoding of s: a uvarint pair count, then a
// length-prefixed key, a length-prefixed value and a uvarint mod index per
// pair, in key order. Call it on a Clone to avoid blocking writers.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	var buf [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) error {
		k := binary.PutUvarint(buf[:], v)
		_, err := bw.Write(buf[:k])
		n += int64(k)
		return err
	}
	put := func(b []byte) error {
		if err := uvarint(uint64(len(b))); err != nil {
			return err
		}
		_, err := bw.Write(b)
		n += int64(len(b))
		return err
	}
	if err := uvarint(uint64(s.tree.Len())); err != nil {
		return n, fmt.Errorf("write snapshot: %w", err)
	}
	var err error
	s.tree.Ascend(func(kv KV) bool {
		if err = put(kv.Key); err != nil {
			return false
		}
		if err = put(kv.Value); err != nil {
			return false
		}
		err = uvarint(kv.ModIndex)
		return err == nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("write snapshot: %w", err)
	}
	return n, nil
}

// Decode rebuilds a store from the encoding WriteTo produced. It rejects
// unsorted or duplicate keys, fields over the command limits and a mod
// index of 0.
func Decode(b []byte) (*Store, error) {
	count, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: bad pair count", ErrCorrupt)
	}
	b = b[k:]
	// Each pair takes at least 4 bytes (non-empty key, two lengths and a
	// mod index).
	if count > uint64(len(b))/4 {
		return nil, fmt.Errorf("%w: %d pairs in %d bytes", ErrCorrupt, count, len(b))
	}
	field := func(limit int) ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(limit) || n > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: bad field", ErrCorrupt)
		}
		v := b[k : k+int(n) : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	s := New()
	var prev []byte
	for i := uint64(0); i < count; i++ {
		key, err := field(command.MaxKeySize)
		if err != nil {
			return nil, err
		}
		val, err := field(command.MaxValueSize)
		if err != nil {
			return nil, err
		}
		mod, k := binary.Uvarint(b)
		if k <= 0 || mod == 0 {
			return nil, fmt.Errorf("%w: bad mod index at pair %d", ErrCorrupt, i)
		}
		b = b[k:]
		if len(key) == 0 || (i > 0 && bytes.Compare(prev, key) >= 0) {
			return nil, fmt.Errorf("%w: keys not strictly ordered at pair %d", ErrCorrupt, i)
		}
		prev = key
		kv := KV{Key: bytes.Clone(key), Value: bytes.Clone(val), ModIndex: mod}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		s.tree.ReplaceOrInsert(kv)
		s.bytes += int64(len(kv.Key) + len(kv.Value))
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	return s, nil
}

// overlay is the state a dry run has written, over the store's.
type overlay struct {
	s   *Store
	set map[string]*KV // nil: deleted
}

func (o *overlay) get(key []byte) (KV, bool) {
	if kv, ok := o.set[string(key)]; ok {
		if kv == nil {
			return KV{}, false
		}
		return *kv, true
	}
	return o.s.tree.Get(KV{Key: key})
}

// apply records ops and returns the change in Bytes they make.
func (o *overlay) apply(ops []command.Op) int64 {
	var d int64
	for _, op := range ops {
		old, found := o.get(op.Key)
		if found {
			d -= int64(len(old.Key) + len(old.Value))
		}
		switch op.Type {
		case command.OpPut:
			d += int64(len(op.Key) + len(op.Value))
			o.set[string(op.Key)] = &KV{Key: op.Key, Value: op.Value}
		case command.OpDelete:
			o.set[string(op.Key)] = nil
		}
	}
	return d
}

// Delta returns how much Bytes would change if ops were applied, without
// applying them.
func (s *Store) Delta(ops []command.Op) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := overlay{s: s, set: map[string]*KV{}}
	return o.apply(ops)
}

// TxnsDelta returns how much Bytes would change if txns were applied, as
// ApplyTxns would apply them, without applying them.
func (s *Store) TxnsDelta(txns []command.Txn) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := overlay{s: s, set: map[string]*KV{}}
	var d int64
	for _, t := range txns {
		holds := true
		for _, c := range t.If {
			kv, found := o.get(c.Key)
			if !evaluate(c, kv, found) {
				holds = false
				break
			}
		}
		if holds {
			d += o.apply(t.Then)
		} else {
			d += o.apply(t.Else)
		}
	}
	return d
}

// MaxGrowth is an upper bound on how much ops can grow Bytes: the sizes of
// their puts. It reads no state.
func MaxGrowth(ops []command.Op) int64 {
	var n int64
	for _, op := range ops {
		if op.Type == command.OpPut {
			n += int64(len(op.Key) + len(op.Value))
		}
	}
	return n
}
