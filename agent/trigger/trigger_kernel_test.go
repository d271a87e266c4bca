package trigger_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/agent/trigger"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/probetest"
)

func TestMain(m *testing.M) {
	cgtest.MaybeHelper()
	os.Exit(m.Run())
}

const mib = 1 << 20

// kernelRig is the real programs and sampler, with a trigger over them.
type kernelRig struct {
	t      *testing.T
	layout cgroupfs.Layout
	p      *probe.Probes
	smp    *sampler.Sampler
	tr     *trigger.Trigger
}

func newKernelRig(t *testing.T, cfg trigger.Config) *kernelRig {
	t.Helper()
	l := cgtest.Layout(t)
	p := probetest.Load(t, l, probe.Config{SkipRequests: true})
	smp, err := sampler.New(sampler.Config{Layout: l, HitRatio: p.HitRatio}, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(smp.Close)
	if err := smp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr, err := trigger.New(cfg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &kernelRig{t: t, layout: l, p: p, smp: smp, tr: tr}
}

// sample samples, hands the sample to the trigger (which arms the watches
// after the first) and returns the cgroup v2 id of each of paths.
func (r *kernelRig) sample(paths ...string) []uint64 {
	r.t.Helper()
	if err := r.tr.Arm(); err != nil {
		r.t.Fatal(err)
	}
	s, err := r.smp.Sample()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.tr.Sampled(s); err != nil {
		r.t.Fatal(err)
	}
	ids := make([]uint64, len(paths))
	for i, p := range paths {
		for _, c := range s.Cgroups {
			if c.Path == p && !c.Idle {
				ids[i] = c.ID
			}
		}
		if ids[i] == 0 {
			r.t.Fatalf("cgroup %s missing from the sample", p)
		}
	}
	return ids
}

// next returns the next wake-up's cgroup id.
func (r *kernelRig) next() uint64 {
	r.t.Helper()
	select {
	case id := <-r.tr.C():
		return id
	case <-time.After(30 * time.Second):
		r.t.Fatal("no wake-up")
		return 0
	}
}

// moved is the bytes cgroup id's RSS moved since its watch was armed.
func (r *kernelRig) moved(id uint64) int64 {
	r.t.Helper()
	d, ok, err := r.p.RSSMoved(id)
	if err != nil || !ok {
		r.t.Fatalf("watch of cgroup %d: %v, %v", id, ok, err)
	}
	return d
}

// TestRSSWatchesWake runs processes in two real cgroups that grow and
// shrink their RSS: the kernel wakes the agent with the cgroup's id when
// a cgroup moves past its limit (1 MiB here, or 5% of what it held), once
// per arming, in either direction, and not for smaller changes. The ring
// of wake-ups is in order, so a wake-up that should not have come would
// be read before the one that should.
func TestRSSWatchesWake(t *testing.T) {
	r := newKernelRig(t, trigger.Config{})
	g := cgtest.NewGroup(t, r.layout)
	grow, quiet := g.Child("grow"), g.Child("quiet")
	gp, qp := grow.Start(), quiet.Start()
	gp.Do("touch %d", 4*mib)
	ids := r.sample(grow.Path, quiet.Path)
	growID, quietID := ids[0], ids[1]

	// Under the limit: counted, no wake-up. A process's changes reach
	// the watch in steps of 64 KiB (RSS_WATCH_GRAIN in bpf/memory.bpf.c).
	const grain = 64 << 10
	qp.Do("touch %d", mib/4)
	if d := r.moved(quietID); d < mib/4-grain || d > mib/2 {
		t.Errorf("quiet moved %d bytes after touching 256 KiB", d)
	}
	// Past it: a wake-up for grow, the first in the ring.
	gp.Do("touch %d", 16*mib)
	if id := r.next(); id != growID {
		t.Fatalf("woken for cgroup %d, want grow's %d (quiet is %d)", id, growID, quietID)
	}
	if d := r.moved(growID); d < 16*mib-grain || d > 17*mib {
		t.Errorf("grow moved %d bytes after touching 16 MiB", d)
	}
	// Once per arming: grow again wakes no one; quiet past its limit does.
	gp.Do("touch %d", 16*mib)
	qp.Do("touch %d", 4*mib)
	if id := r.next(); id != quietID {
		t.Fatalf("woken for cgroup %d, want quiet's %d (grow, disarmed, is %d)", id, quietID, growID)
	}

	// Armed again by the next sample: shrinking wakes too.
	r.sample(grow.Path, quiet.Path)
	gp.Do("free")
	if id := r.next(); id != growID {
		t.Fatalf("woken for cgroup %d, want grow's %d", id, growID)
	}
	// 36 MiB give or take one: the process's own pages besides the
	// buffer move too (a CI run under -race saw 35.99 MiB).
	if d := r.moved(growID); d > -35*mib || d < -37*mib {
		t.Errorf("grow moved %d bytes after freeing 36 MiB", d)
	}

	// A cgroup that left the samples (after one that saw it go) has no
	// watch.
	gp.Stop()
	grow.Remove()
	r.sample(quiet.Path)
	r.sample(quiet.Path)
	if _, ok, err := r.p.RSSMoved(growID); ok || err != nil {
		t.Errorf("the watch of a removed cgroup is still there (%v)", err)
	}
}
