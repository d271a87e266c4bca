package kvstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pennyhq/penny/kvraft/command"
)

// TestDeltaMatchesApply checks that the dry runs the quota relies on
// predict exactly how applying changes Bytes, repeated keys and txn
// branches that depend on earlier txns of the same entry included.
func TestDeltaMatchesApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	op := func() command.Op {
		k := fmt.Sprintf("k%d", rng.IntN(8))
		if rng.IntN(3) == 0 {
			return del(k)
		}
		return put(k, string(make([]byte, rng.IntN(20))))
	}
	s := New()
	for i := range 500 {
		index := uint64(i + 1)
		before := s.Bytes()
		if i%2 == 0 {
			ops := make([]command.Op, 1+rng.IntN(5))
			for j := range ops {
				ops[j] = op()
			}
			want := s.Delta(ops)
			if g := MaxGrowth(ops); want > g {
				t.Fatalf("entry %d: delta %d above the bound %d", i, want, g)
			}
			s.Apply(ops, index)
			if got := s.Bytes() - before; got != want {
				t.Fatalf("entry %d: batch changed bytes by %d, Delta said %d", i, got, want)
			}
			continue
		}
		txns := make([]command.Txn, 1+rng.IntN(3))
		for j := range txns {
			k := []byte(fmt.Sprintf("k%d", rng.IntN(8)))
			txns[j] = command.Txn{
				If:   []command.Compare{{Key: k, Target: command.TargetExists, Op: command.CmpEqual}},
				Then: []command.Op{op(), op()},
				Else: []command.Op{op()},
			}
		}
		want := s.TxnsDelta(txns)
		s.ApplyTxns(txns, index)
		if got := s.Bytes() - before; got != want {
			t.Fatalf("entry %d: txns changed bytes by %d, TxnsDelta said %d", i, got, want)
		}
	}
}
