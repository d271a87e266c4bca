package trigger_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/agent/trigger"
)

// watches stands in for the kernel's (TestRSSWatchesWake has the real
// ones): moves is what RSSMoved answers, one value a call, the last one
// again once they run out.
type watches struct {
	mu     sync.Mutex
	armed  []map[uint64]int64
	moves  []int64
	reads  int
	fail   error // what RSSMoved returns, when set
	closed chan struct{}
}

func newWatches() *watches { return &watches{closed: make(chan struct{})} }

func (w *watches) ArmRSS(limits map[uint64]int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = append(w.armed, maps.Clone(limits))
	return nil
}

func (w *watches) RSSMoved(uint64) (int64, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	if w.fail != nil {
		return 0, false, w.fail
	}
	if len(w.moves) == 0 {
		return 0, true, nil
	}
	v := w.moves[0]
	if len(w.moves) > 1 {
		w.moves = w.moves[1:]
	}
	return v, true, nil
}

func (w *watches) RSSChange() (uint64, error) {
	<-w.closed
	return 0, probe.ErrClosed
}

func newTrigger(t *testing.T, cfg trigger.Config, w *watches) *trigger.Trigger {
	t.Helper()
	tr, err := trigger.New(cfg, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(w.closed)
		<-tr.Done()
	})
	return tr
}

func TestLimits(t *testing.T) {
	w := newWatches()
	tr := newTrigger(t, trigger.Config{}, w)
	s := &sampler.Sample{Time: time.Now(), Cgroups: []sampler.Cgroup{
		{ID: 1, RSSBytes: 100 * mib},       // 5%
		{ID: 2, RSSBytes: 2 * mib},         // the 1 MiB least
		{ID: 3, RSSBytes: 0},               // empty: the least too
		{ID: 4, RSSBytes: mib, Idle: true}, // gone
		{ID: 0, RSSBytes: mib},             // no id: not watchable
	}}
	if err := tr.Sampled(s); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]int64{1: 5 * mib, 2: mib, 3: mib}
	if len(w.armed) != 1 || !maps.Equal(w.armed[0], want) {
		t.Fatalf("armed %v after the first sample, want once with %v", w.armed, want)
	}
	// Later samples set the limits; Arm, before the next sample, arms.
	s.Cgroups = s.Cgroups[:1]
	if err := tr.Sampled(s); err != nil {
		t.Fatal(err)
	}
	if len(w.armed) != 1 {
		t.Fatalf("armed again by a later sample: %v", w.armed)
	}
	if err := tr.Arm(); err != nil {
		t.Fatal(err)
	}
	if len(w.armed) != 2 || !maps.Equal(w.armed[1], map[uint64]int64{1: 5 * mib}) {
		t.Fatalf("armed %v, want {1: 5 MiB} second", w.armed)
	}
}

func TestTake(t *testing.T) {
	const limit = 4 * mib
	for _, tt := range []struct {
		name  string
		moves []int64
		// reads is the number of RSSMoved calls Take makes at most:
		// one, then one a step until settled or Settle passes.
		reads int
	}{
		{"settled at once", []int64{limit}, 2},
		{"still growing", []int64{limit, 3 * limit, 5 * limit, 5 * limit}, 4},
		{"never settles", []int64{limit, 2 * limit, 3 * limit, 4 * limit, 5 * limit, 6 * limit, 7 * limit, 8 * limit,
			9 * limit, 10 * limit, 11 * limit, 12 * limit}, 1 + 50/5 + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatches()
			w.moves = tt.moves
			tr := newTrigger(t, trigger.Config{Settle: 50 * time.Millisecond}, w)
			if err := tr.Sampled(&sampler.Sample{Cgroups: []sampler.Cgroup{{ID: 7, RSSBytes: 80 * mib}}}); err != nil {
				t.Fatal(err)
			}
			ok, err := tr.Take(context.Background(), 7)
			if err != nil || !ok {
				t.Fatalf("Take: %v, %v", ok, err)
			}
			if w.reads > tt.reads || w.reads < min(tt.reads, 2) {
				t.Errorf("read the watch %d times, want at most %d", w.reads, tt.reads)
			}
		})
	}
}

// TestTakeUnreadable: a watch that cannot be read does not stop the
// agent: the change is sampled at once.
func TestTakeUnreadable(t *testing.T) {
	w := newWatches()
	w.fail = errors.New("bad file descriptor")
	tr := newTrigger(t, trigger.Config{}, w)
	if ok, err := tr.Take(context.Background(), 7); !ok || err != nil {
		t.Errorf("Take with an unreadable watch: %v, %v; want a sample", ok, err)
	}
	if w.reads != 1 {
		t.Errorf("read the watch %d times, want once", w.reads)
	}
}

// TestTakeBudget: at most Burst changes are taken at once, the others
// left to the interval; and samples are at least Floor apart.
func TestTakeBudget(t *testing.T) {
	w := newWatches()
	tr := newTrigger(t, trigger.Config{PerSecond: 0.001, Burst: 2, Floor: 50 * time.Millisecond}, w)
	var took []bool
	var gaps []time.Duration
	for range 4 {
		start := time.Now()
		if err := tr.Sampled(&sampler.Sample{Time: start, Cgroups: []sampler.Cgroup{{ID: 7}}}); err != nil {
			t.Fatal(err)
		}
		ok, err := tr.Take(context.Background(), 7)
		if err != nil {
			t.Fatal(err)
		}
		took = append(took, ok)
		if ok {
			gaps = append(gaps, time.Since(start))
		}
	}
	if want := []bool{true, true, false, false}; !slices.Equal(took, want) {
		t.Errorf("took %v, want %v", took, want)
	}
	for _, g := range gaps {
		if g < 50*time.Millisecond {
			t.Errorf("a change was taken %s after the last sample, within the 50ms floor", g)
		}
	}
	// A cancelled wait is an error, not a sample.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr2 := newTrigger(t, trigger.Config{}, newWatches())
	if err := tr2.Sampled(&sampler.Sample{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ok, err := tr2.Take(ctx, 7); ok || err == nil {
		t.Errorf("Take with a cancelled context: %v, %v", ok, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  trigger.Config
		ok   bool
	}{
		{"defaults", trigger.Config{}, true},
		{"negative threshold", trigger.Config{Threshold: -1}, false},
		{"floor too short", trigger.Config{Floor: time.Millisecond}, false},
		{"settle too long", trigger.Config{Settle: 2 * time.Second}, false},
		{"too many a second", trigger.Config{PerSecond: 1000}, false},
		{"burst too large", trigger.Config{Burst: 1000}, false},
		{"negative min bytes", trigger.Config{MinBytes: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.Complete()
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate: %v, want ok %v", err, tt.ok)
			}
		})
	}
}
