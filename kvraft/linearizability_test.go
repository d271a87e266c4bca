package kvraft_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/pennyhq/penny/kvraft"
)

type kvInput struct {
	op    string // "get", "put", "delete"
	key   string
	value string
}

type kvOutput struct {
	value string
	found bool
}

type kvState struct {
	value string
	found bool
}

// kvModel is a sequential specification of one key's register.
var kvModel = porcupine.Model{
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
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in := state.(kvState), input.(kvInput)
		switch in.op {
		case "put":
			return true, kvState{value: in.value, found: true}
		case "delete":
			return true, kvState{}
		}
		out := output.(kvOutput)
		return out == kvOutput(s), s
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.op == "get" {
			out := output.(kvOutput)
			return fmt.Sprintf("get(%s) -> %q,%v", in.key, out.value, out.found)
		}
		return fmt.Sprintf("%s(%s, %q)", in.op, in.key, in.value)
	},
}

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
				switch r := rng.IntN(10); {
				case r < 4:
					in.op = "get"
				case r < 9:
					in.op, in.value = "put", fmt.Sprintf("c%d-%d", cl, seq)
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
					out = kvOutput{value: string(r.Value), found: r.Found}
				case "put":
					_, err = n.Put(ctx, []byte(in.key), []byte(in.value))
				case "delete":
					_, err = n.Delete(ctx, []byte(in.key))
				}
				ret := h.now()
				cancel()
				switch {
				case err == nil:
					h.add(porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				case in.op != "get":
					// A write that failed may still commit at any later time.
					h.add(porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: math.MaxInt64})
				case !errors.Is(err, kvraft.ErrTimeout) && !errors.Is(err, kvraft.ErrStopped):
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

			var ok, failed int
			for _, op := range h.ops {
				if op.Return == math.MaxInt64 {
					failed++
				} else {
					ok++
				}
			}
			t.Logf("%d completed and %d indeterminate operations", ok, failed)
			if ok < 100 {
				t.Fatalf("only %d operations completed; the cluster made too little progress", ok)
			}
			res := porcupine.CheckOperationsTimeout(kvModel, h.ops, 60*time.Second)
			if res == porcupine.Illegal {
				t.Fatal("history is not linearizable")
			}
			if res != porcupine.Ok {
				t.Fatalf("linearizability check did not finish: %v", res)
			}
		})
	}
}
