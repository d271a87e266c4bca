package kvraft_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
)

// TestSessionReadsSeeOwnWrites checks read-your-writes: a session read with
// the index a write returned, on any member, sees that write or a later one,
// while the network delays followers.
func TestSessionReadsSeeOwnWrites(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	c.net.SetDelay(time.Millisecond, 15*time.Millisecond)
	var followers []*kvraft.Node
	for _, n := range c.running() {
		if n.ID() != lead {
			followers = append(followers, n)
		}
	}
	for i := 1; i <= 60; i++ {
		idx := put(t, c.node(lead), "session", strconv.Itoa(i))
		f := followers[i%len(followers)]
		r := get(t, f, "session", kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: idx})
		got, _ := strconv.Atoi(string(r.Value))
		if !r.Found || got < i || r.Index < idx {
			t.Fatalf("session read on %d after write %d at index %d: value %q index %d", f.ID(), i, idx, r.Value, r.Index)
		}
		// Monotonic reads: a session carrying the read's index never goes back.
		r2 := get(t, followers[(i+1)%len(followers)], "session", kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: r.Index})
		if got2, _ := strconv.Atoi(string(r2.Value)); got2 < got {
			t.Fatalf("monotonic read went back from %d to %d", got, got2)
		}
	}
}

type ack struct {
	at    time.Time
	value int
}

// TestBoundedReadsWithinStaleness checks the definition of bounded reads: a
// read with max staleness S that starts at time t returns a state that
// contains every write acknowledged before t-S, including on a member that
// is partitioned away (which must then fail rather than serve stale data).
func TestBoundedReadsWithinStaleness(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	c.net.SetDelay(0, 10*time.Millisecond)
	const staleness = 60 * time.Millisecond

	var mu sync.Mutex
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := c.node(lead).Put(ctx, []byte("clock"), []byte(strconv.Itoa(i)))
			cancel()
			if err == nil {
				mu.Lock()
				acks = append(acks, ack{time.Now(), i})
				mu.Unlock()
			}
		}
	})
	// requiredAt returns the largest value acknowledged before t.
	requiredAt := func(t time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		v := 0
		for _, a := range acks {
			if a.at.Before(t) {
				v = a.value
			}
		}
		return v
	}

	var followers []*kvraft.Node
	for _, n := range c.running() {
		if n.ID() != lead {
			followers = append(followers, n)
		}
	}
	check := func(phase string, n *kvraft.Node, reads int) (served, failed int) {
		for range reads {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			r, err := n.Get(ctx, []byte("clock"), kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: staleness})
			cancel()
			if err != nil {
				failed++
				continue
			}
			served++
			got, _ := strconv.Atoi(string(r.Value))
			if want := requiredAt(start.Add(-staleness)); got < want {
				t.Fatalf("%s: bounded read on %d returned %d, but %d was acknowledged more than %v before the read started",
					phase, n.ID(), got, want, staleness)
			}
			time.Sleep(time.Millisecond)
		}
		return served, failed
	}
	time.Sleep(100 * time.Millisecond)
	served, _ := check("healthy", followers[0], 300)
	if served == 0 {
		t.Fatal("no bounded read was served in a healthy cluster")
	}

	// Cut one follower off: it can no longer prove freshness.
	iso := followers[1]
	check("warm-up", iso, 20)
	var others []uint64
	for _, m := range c.members {
		if m.ID != iso.ID() {
			others = append(others, m.ID)
		}
	}
	c.net.Partition([]uint64{iso.ID()}, others)
	time.Sleep(2 * staleness)
	_, failed := check("partitioned", iso, 10)
	if failed == 0 {
		t.Fatal("a partitioned member kept serving bounded reads")
	}
	// Its eventual reads still answer, from old state.
	if _, err := iso.Get(context.Background(), []byte("clock"), kvraft.ReadOptions{Consistency: kvraft.Eventual}); err != nil {
		t.Fatalf("eventual read on partitioned member: %v", err)
	}
	c.net.Heal()
	close(stop)
	wg.Wait()
	check("healed", iso, 50)
}

// TestBoundedReadsServedLocally checks that a steady stream of bounded
// reads mostly avoids ReadIndex round trips: with the network delaying every
// message by 50ms, a linearizable read costs at least one round trip while a
// bounded read with generous staleness is served from the local proof.
func TestBoundedReadsServedLocally(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	put(t, c.node(lead), "k", "v")
	c.net.SetDelay(50*time.Millisecond, 50*time.Millisecond)
	var f *kvraft.Node
	for _, n := range c.running() {
		if n.ID() != lead {
			f = n
		}
	}
	get(t, f, "k", kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: time.Second})
	fast := 0
	const reads = 50
	for range reads {
		start := time.Now()
		get(t, f, "k", kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: time.Second})
		// A round trip takes 100ms here; anything faster was local.
		if time.Since(start) < 50*time.Millisecond {
			fast++
		}
		time.Sleep(5 * time.Millisecond)
	}
	if fast < reads*8/10 {
		t.Fatalf("only %d of %d bounded reads were served without a round trip", fast, reads)
	}
	start := time.Now()
	get(t, f, "k", linearizable)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("linearizable read took %v, faster than a round trip: it cannot have used ReadIndex", d)
	}
}

func TestEventualReadsAreLocal(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	idx := put(t, c.node(lead), "k", "v")
	c.waitApplied(idx)
	c.net.Partition([]uint64{1}, []uint64{2, 3})
	r := get(t, c.node(1), "k", kvraft.ReadOptions{Consistency: kvraft.Eventual})
	if !r.Found || string(r.Value) != "v" || r.Index < idx {
		t.Fatalf("eventual read = %+v", r)
	}
}

func ExampleNode_Get() {
	// A session read after a write observes it on any replica:
	//
	//	idx, _ := node.Put(ctx, []byte("k"), []byte("v"))
	//	r, _ := other.Get(ctx, []byte("k"), kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: idx})
	fmt.Println(kvraft.Session)
	// Output: session
}
