package kvraft_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/pennyhq/penny/kvraft"
)

type kvInput struct {
	op    string // "get", "put", "delete", "cas"
	key   string
	value string
	// mod is the mod index a cas expects: it puts value if the key's mod
	// index equals mod (0: the key is absent).
	mod uint64
}

type kvOutput struct {
	value string
	found bool
	// mod is the key's mod index for a get and the commit index of a put
	// or cas.
	mod uint64
	// ok reports that a cas's compare held.
	ok bool
	// unknown marks a write that failed: it may or may not have committed,
	// and its outcome is unknown.
	unknown bool
}

// kvState is one key's register: its value and, unless an indeterminate
// write left it unknown, its mod index.
type kvState struct {
	value    string
	found    bool
	mod      uint64
	modKnown bool
}

var absent = kvState{modKnown: true}

// written is the state after a put of value that returned out, or nothing
// if out's commit index cannot follow the current state's.
func written(s kvState, value string, out kvOutput) []any {
	if out.unknown {
		return []any{kvState{value: value, found: true}}
	}
	if s.modKnown && out.mod <= s.mod {
		return nil // writes take effect in log order
	}
	return []any{kvState{value: value, found: true, mod: out.mod, modKnown: true}}
}

// kvModel is a sequential specification of one key's register with mod
// indexes and compare-and-set on the mod index. It is nondeterministic only
// where a cas that failed with an unknown outcome meets an unknown mod index.
var kvModel = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{absent} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			switch {
			case out.value != s.value || out.found != s.found:
				return nil
			case !out.found && out.mod != 0:
				return nil
			case s.modKnown && out.mod != s.mod:
				return nil
			}
			s.mod, s.modKnown = out.mod, true
			return []any{s}
		case "put":
			return written(s, in.value, out)
		case "delete":
			return []any{absent}
		case "cas":
			switch {
			case out.unknown && s.modKnown && s.mod == in.mod:
				return written(s, in.value, out)
			case out.unknown && s.modKnown:
				return []any{s}
			case out.unknown:
				return append(written(s, in.value, out), s)
			case s.modKnown && (s.mod == in.mod) != out.ok:
				return nil
			case out.ok:
				return written(s, in.value, out)
			}
			return []any{s}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch {
		case in.op == "get":
			return fmt.Sprintf("get(%s) -> %q,%v@%d", in.key, out.value, out.found, out.mod)
		case out.unknown:
			return fmt.Sprintf("%s(%s, %q, %d) -> ?", in.op, in.key, in.value, in.mod)
		case in.op == "cas":
			return fmt.Sprintf("cas(%s, mod %d, %q) -> %v@%d", in.key, in.mod, in.value, out.ok, out.mod)
		}
		return fmt.Sprintf("%s(%s, %q) -> @%d", in.op, in.key, in.value, out.mod)
	},
}).ToModel()

// history records concurrent client operations for porcupine.
type history struct {
	t0  time.Time
	mu  sync.Mutex
	ops []porcupine.Operation
}

func (h *history) now() int64 { return time.Since(h.t0).Nanoseconds() }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// runClients drives random operations against random running members until
// stop is closed, and records them.
func runClients(c *testCluster, h *history, clients int, keys []string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), uint64(time.Now().UnixNano())))
			seen := map[string]uint64{} // the last mod index this client saw per key
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				nodes := c.running()
				if len(nodes) == 0 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				n := nodes[rng.IntN(len(nodes))]
				in := kvInput{key: keys[rng.IntN(len(keys))]}
				switch r := rng.IntN(20); {
				case r < 8:
					in.op = "get"
				case r < 13:
					in.op, in.value = "put", fmt.Sprintf("c%d-%d", cl, seq)
				case r < 18:
					in.op, in.value, in.mod = "cas", fmt.Sprintf("c%d-%d", cl, seq), seen[in.key]
				default:
					in.op = "delete"
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				call := h.now()
				var out kvOutput
				var err error
				switch in.op {
				case "get":
					var r kvraft.GetResult
					r, err = n.Get(ctx, []byte(in.key), linearizable)
					out = kvOutput{value: string(r.Value), found: r.Found, mod: r.ModIndex}
					seen[in.key] = r.ModIndex
				case "put":
					out.mod, err = n.Put(ctx, []byte(in.key), []byte(in.value))
					seen[in.key] = out.mod
				case "delete":
					_, err = n.Delete(ctx, []byte(in.key))
					seen[in.key] = 0
				case "cas":
					var r kvraft.TxnResult
					r, err = n.Txn(ctx, kvraft.Txn{
						If:   []kvraft.Compare{kvraft.CompareModIndex([]byte(in.key), kvraft.CmpEqual, in.mod)},
						Then: []kvraft.Op{{Type: kvraft.OpPut, Key: []byte(in.key), Value: []byte(in.value)}},
					})
					out = kvOutput{mod: r.Index, ok: r.Succeeded}
					if r.Succeeded {
						seen[in.key] = r.Index
					}
				}
				ret := h.now()
				cancel()
				switch {
				case err == nil:
					h.add(porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				case in.op != "get":
					// A write that failed may still commit at any later time.
					h.add(porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: kvOutput{unknown: true}, Return: math.MaxInt64})
				case !errors.Is(err, kvraft.ErrTimeout) && !errors.Is(err, kvraft.ErrNoLeader) && !errors.Is(err, kvraft.ErrStopped):
					c.t.Errorf("get on %d: unexpected error %v", n.ID(), err)
				}
			}
		})
	}
	return &wg
}

func TestLinearizableUnderFaults(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			c := newCluster(t, size, func(cfg *kvraft.Config) {
				cfg.SnapshotCount = 200
				cfg.SnapshotCatchUpEntries = 50
			})
			c.waitLeader()
			c.net.SetDelay(0, 3*time.Millisecond) // jitter reorders messages
			c.net.SetDrop(0.02)

			h := &history{t0: time.Now()}
			stop := make(chan struct{})
			wg := runClients(c, h, 6, []string{"x", "y", "z"}, stop)

			// Nemesis: isolate the leader, heal, crash and restart a member.
			rng := rand.New(rand.NewPCG(uint64(size), 1))
			for round := range 3 {
				time.Sleep(300 * time.Millisecond)
				lead := c.waitLeader()
				var rest []uint64
				for _, m := range c.members {
					if m.ID != lead {
						rest = append(rest, m.ID)
					}
				}
				c.net.Partition([]uint64{lead}, rest)
				time.Sleep(400 * time.Millisecond)
				c.net.Heal()
				victim := c.members[rng.IntN(size)].ID
				if round == 1 {
					victim = lead
				}
				c.crash(victim)
				time.Sleep(200 * time.Millisecond)
				c.start(victim)
			}
			time.Sleep(300 * time.Millisecond)
			close(stop)
			wg.Wait()

			var ok, failed, swapped, refused int
			for _, op := range h.ops {
				switch out := op.Output.(kvOutput); {
				case op.Return == math.MaxInt64:
					failed++
				case op.Input.(kvInput).op == "cas" && out.ok:
					ok++
					swapped++
				case op.Input.(kvInput).op == "cas":
					ok++
					refused++
				default:
					ok++
				}
			}
			t.Logf("%d completed (cas: %d swapped, %d refused) and %d indeterminate operations", ok, swapped, refused, failed)
			if ok < 100 {
				t.Fatalf("only %d operations completed; the cluster made too little progress", ok)
			}
			if swapped < 3 || refused < 3 {
				t.Fatalf("too few cas outcomes of each kind to check them: %d swapped, %d refused", swapped, refused)
			}
			res, info := porcupine.CheckOperationsVerbose(kvModel, h.ops, 60*time.Second)
			if res == porcupine.Illegal {
				path := filepath.Join(os.TempDir(), fmt.Sprintf("kvraft-linearizability-%d.html", time.Now().UnixNano()))
				if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
					t.Logf("visualize history: %v", err)
				} else {
					t.Logf("history visualized in %s", path)
				}
				t.Fatal("history is not linearizable")
			}
			if res != porcupine.Ok {
				t.Fatalf("linearizability check did not finish: %v", res)
			}
		})
	}
}
