package exporter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

// TestGatherEqualsCollect: Gather, the scrape's fast path, returns what a
// registry gathers from Collect, family by family and series by series,
// for stores of varied containers: simulated nodes of pods and system
// units (the same units on every node), containers without the optional
// values, with and without pressure, the same cgroup on two nodes, label
// values that are not valid UTF-8; an empty store, and one that cannot be
// read.
func TestGatherEqualsCollect(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name  string
		store func(t *testing.T) query.Store
	}{
		{"varied", func(t *testing.T) query.Store {
			s := newMemStore()
			fillSim(t, s, 3, now)
			fillVaried(t, s, now)
			return s
		}},
		{"empty", func(*testing.T) query.Store { return newMemStore() }},
		{"unreadable", func(*testing.T) query.Store { return failingStore{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.store(t)
			ref, fast := newCollector(t, s), newCollector(t, s)
			reg := prometheus.NewRegistry()
			reg.MustRegister(ref)
			want, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got, err := fast.Gather()
			if err != nil {
				t.Fatal(err)
			}
			compareFamilies(t, got, want)
		})
	}
}

// TestBeside: the collector's families served beside a registry's are
// both lists merged by name; a family both have is an error.
func TestBeside(t *testing.T) {
	s := newMemStore()
	fillVaried(t, s, time.Now().Truncate(time.Second))
	c := newCollector(t, s)
	reg := prometheus.NewRegistry()
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_a_total", Help: "Sorted before the collector's."})
	reg.MustRegister(other)
	mfs, err := exporter.Beside(reg, c).Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := prometheus.NewRegistry()
	want.MustRegister(other, newCollector(t, s))
	wmfs, err := want.Gather()
	if err != nil {
		t.Fatal(err)
	}
	compareFamilies(t, mfs, wmfs)

	dup := prometheus.NewRegistry()
	dup.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_container_memory_rss_bytes", Help: "Twice."}))
	if _, err := exporter.Beside(dup, c).Gather(); err == nil || !strings.Contains(err.Error(), "gathered twice") {
		t.Errorf("a family gathered twice: error %v", err)
	}
}

func newCollector(t *testing.T, s query.Store) *exporter.Collector {
	t.Helper()
	c, err := exporter.New(exporter.Config{Store: s, TenantLabel: "team"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// compareFamilies fails t unless got and want are the same families with
// the same series in the same order.
func compareFamilies(t *testing.T, got, want []*dto.MetricFamily) {
	t.Helper()
	if g, w := familyNames(got), familyNames(want); g != w {
		t.Fatalf("families\n%s\nwant\n%s", g, w)
	}
	for i := range want {
		// Two collectors' error counters were created at two times.
		for _, mf := range []*dto.MetricFamily{got[i], want[i]} {
			if mf.GetName() == "penny_container_scrape_errors_total" {
				mf.Metric[0].Counter.CreatedTimestamp = nil
			}
		}
		if proto.Equal(got[i], want[i]) {
			continue
		}
		g, w := text(t, got[i]), text(t, want[i])
		gl, wl := strings.Split(g, "\n"), strings.Split(w, "\n")
		for j := range min(len(gl), len(wl)) {
			if gl[j] != wl[j] {
				t.Fatalf("%s: line %d is\n%s\nwant\n%s", want[i].GetName(), j+1, gl[j], wl[j])
			}
		}
		t.Fatalf("%s: %d lines, want %d (text equal: %v)", want[i].GetName(), len(gl), len(wl), g == w)
	}
}

func familyNames(mfs []*dto.MetricFamily) string {
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(mf.GetName() + " " + mf.GetType().String() + "\n")
	}
	return b.String()
}

func text(t *testing.T, mf *dto.MetricFamily) string {
	t.Helper()
	var b strings.Builder
	if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fillVaried writes two nodes whose containers vary: pods with and
// without requests and tenant label, a cgroup on both nodes (the same
// path, another pod on each), system units without pressure or latency,
// and label values that are not valid UTF-8.
func fillVaried(t *testing.T, s *memStore, now time.Time) {
	t.Helper()
	web := &podmeta.Pod{UID: "uid-web", Namespace: "shop", Name: "web-1", OwnerKind: "ReplicaSet", OwnerName: "web-5d8",
		Labels: map[string]string{"team": "acme"}}
	bad := &podmeta.Pod{UID: "uid-bad", Namespace: "shop", Name: "bad-\xff", OwnerKind: "ReplicaSet", OwnerName: "bad"}
	for i, node := range []string{"node-b", "node-a"} {
		other := &podmeta.Pod{UID: "uid-" + node, Namespace: "batch", Name: "job-" + node, OwnerKind: "Job", OwnerName: "job"}
		u := &model.Update{Node: node, Incarnation: 1, Seq: 1, Time: now, Interval: time.Second, Keyframe: true,
			Changed: []model.SeriesState{
				{Ref: 1, Path: "/kubepods/shared/main", RSSBytes: int64(i + 1),
					Meta: podmeta.Encode(other, &podmeta.Container{Name: [...]string{"aa", "zz"}[i], RequestCPUMillis: 250})},
				{Ref: 2, Path: "/kubepods/web-1/app", RSSBytes: 1 << 30, WorkingSetBytes: 1 << 29, PressureKnown: true,
					Total: model.Counters{RxBytes: 42, TxBytes: 60, TxLoopbackBytes: 10, TxClusterBytes: 20, TxInternetBytes: 30,
						CPUUsageUsec: 1_500_000, CPUPeriods: 10, CPUThrottledPeriods: 2, CPUThrottledUsec: 250_000,
						CPUPressureSomeUsec: 4000, IOPressureSomeUsec: 9, Requests: 3},
					RequestLatencyLogLinear: requestLatency(20_000, 20_000, 20_000),
					Meta:                    podmeta.Encode(web, &podmeta.Container{Name: "app", RequestCPUMillis: 500, RequestMemory: 256 << 20})},
				{Ref: 3, Path: "/kubepods/web-1/sidecar", RSSBytes: 5, Meta: podmeta.Encode(web, &podmeta.Container{Name: "sidecar"})},
				{Ref: 4, Path: "/kubepods/bad/app", RSSBytes: 7, Meta: podmeta.Encode(bad, &podmeta.Container{Name: "app"})},
				{Ref: 5, Path: "/system.slice/sshd.service", RSSBytes: 5 << 20},
				{Ref: 6, Path: "/system.slice/bad-\xfe.service", RSSBytes: 1},
				{Ref: 7, Path: "/", Total: model.Counters{CPUUsageUsec: 1}},
			}}
		applyUpdate(t, s, &model.NodeState{Node: node}, u, now)
	}
}

// failingStore cannot be read.
type failingStore struct{}

func (failingStore) Range(context.Context, kvraft.RangeRequest, kvraft.ReadOptions) (kvraft.RangeResult, error) {
	return kvraft.RangeResult{}, errors.New("no quorum")
}
