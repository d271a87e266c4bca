package pricing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// configMapDir writes files the way the kubelet writes a ConfigMap volume
// (its AtomicWriter): the files live in a timestamped directory, ..data is
// a symlink to it, and each file name is a symlink into ..data. An update
// writes a new directory and swaps ..data atomically (a rename).
type configMapDir struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMapDir(t *testing.T, files map[string]string) *configMapDir {
	t.Helper()
	d := &configMapDir{t: t, dir: t.TempDir()}
	d.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// update writes a new version of the files and swaps ..data to it.
func (d *configMapDir) update(files map[string]string) {
	d.t.Helper()
	d.gen++
	gen := fmt.Sprintf("..2026_11_25_15_51_%02d.%d", d.gen, d.gen)
	if err := os.Mkdir(filepath.Join(d.dir, gen), 0o755); err != nil {
		d.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d.dir, gen, name), []byte(content), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(d.dir, "..data"))
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		d.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(d.dir, old)); err != nil {
			d.t.Fatal(err)
		}
	}
}

func (d *configMapDir) path(name string) string { return filepath.Join(d.dir, name) }

func priced(cpu float64) string {
	return fmt.Sprintf("%sdefaults:\n  cpuCoreHour: %v\n", header, cpu)
}

// newTestWatcher starts a Watcher on path with its own registry and a log.
func newTestWatcher(t *testing.T, path string) (*Watcher, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var log bytes.Buffer
	w, err := NewWatcher(Config{Path: path, Registerer: reg, Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &log}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return w, reg, &log
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func wantCPU(t *testing.T, w *Watcher, want float64) {
	t.Helper()
	if got := w.Rates(Facts{}).CPUCoreHour; got != want {
		t.Errorf("CPU price in force %v, want %v", got, want)
	}
}

func wantReloads(t *testing.T, w *Watcher, ok, refused float64) {
	t.Helper()
	gotOK, gotRefused := testutil.ToFloat64(w.reloads.WithLabelValues("ok")), testutil.ToFloat64(w.reloads.WithLabelValues("refused"))
	if gotOK != ok || gotRefused != refused {
		t.Errorf("reloads ok %v, refused %v; want %v, %v", gotOK, gotRefused, ok, refused)
	}
}

// TestWatcherConfigMapSwap follows a file through the kubelet's symlink
// swaps: a new version is put in force, a refused one leaves the last good
// prices in force (once, however often it is looked at), and a fixed one
// is put in force again.
func TestWatcherConfigMapSwap(t *testing.T) {
	cm := newConfigMapDir(t, map[string]string{"pricing.yaml": priced(0.05)})
	w, reg, log := newTestWatcher(t, cm.path("pricing.yaml"))
	wantCPU(t, w, 0.05)
	wantReloads(t, w, 1, 0)
	first := w.Status()

	if err := w.Reload(); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	wantReloads(t, w, 1, 0)

	cm.update(map[string]string{"pricing.yaml": priced(0.06)})
	if err := w.Reload(); err != nil {
		t.Fatalf("new version: %v", err)
	}
	wantCPU(t, w, 0.06)
	wantReloads(t, w, 2, 0)
	if st := w.Status(); st.SHA256 == first.SHA256 || st.LoadedAt.Before(first.LoadedAt) || st.File != first.File {
		t.Errorf("status after a reload: %+v (first %+v)", st, first)
	}

	cm.update(map[string]string{"pricing.yaml": header + "defaults:\n  cpuCoreHour: -1\n  cpu: 2\n"})
	for range 3 {
		err := w.Reload()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "defaults.cpu: unknown field") {
			t.Fatalf("refused version: %v", err)
		}
	}
	wantCPU(t, w, 0.06)
	wantReloads(t, w, 2, 1)
	st := w.Status()
	if st.Refused == nil || !strings.Contains(st.Refused.Err.Error(), "defaults.cpu: unknown field") || st.Refused.SHA256 == st.SHA256 {
		t.Errorf("status of a refused version: %+v", st)
	}
	if n := strings.Count(log.String(), "pricing file refused"); n != 1 || !strings.Contains(log.String(), "defaults.cpu: unknown field") {
		t.Errorf("log of a refused version (%d refusals):\n%s", n, log)
	}

	cm.update(map[string]string{"pricing.yaml": priced(0.07)})
	if err := w.Reload(); err != nil {
		t.Fatalf("fixed version: %v", err)
	}
	wantCPU(t, w, 0.07)
	wantReloads(t, w, 3, 1)
	if w.Status().Refused != nil {
		t.Errorf("a fixed file still shows a refusal: %+v", w.Status().Refused)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP penny_pricing_info The prices in force: their currency and source (default: OpenCost's, file, flags); always 1.
# TYPE penny_pricing_info gauge
penny_pricing_info{currency="USD",source="file"} 1
# HELP penny_pricing_reloads_total Loads of the pricing file, the first included, by result: ok, or refused (the last good prices stay in force).
# TYPE penny_pricing_reloads_total counter
penny_pricing_reloads_total{result="ok"} 3
penny_pricing_reloads_total{result="refused"} 1
`), "penny_pricing_info", "penny_pricing_reloads_total"); err != nil {
		t.Error(err)
	}
	if ts := testutil.ToFloat64(w.lastSuccess); ts != float64(w.Status().LoadedAt.UnixNano())/1e9 || ts == 0 {
		t.Errorf("last success %v, loaded at %v", ts, w.Status().LoadedAt)
	}
}

// TestWatcherRefusesUnreadable checks that a file that disappears or grows
// too large is refused, and the prices in force stay.
func TestWatcherRefusesUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pricing.yaml")
	if err := os.WriteFile(path, []byte(priced(0.05)), 0o644); err != nil {
		t.Fatal(err)
	}
	w, _, _ := newTestWatcher(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed file: %v", err)
	}
	wantCPU(t, w, 0.05)
	big := priced(0.06) + "# " + strings.Repeat("x", MaxFileBytes) + "\n"
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("file over %d bytes: %v", MaxFileBytes, err)
	}
	wantCPU(t, w, 0.05)
	wantReloads(t, w, 1, 2)
}

// TestWatcherStart checks the start: a bad file is an error that names the
// file and the field; without a file, OpenCost's defaults are in force.
func TestWatcherStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pricing.yaml")
	if err := os.WriteFile(path, []byte(header+"nodes: [{instanceType: a, capacityType: reserved, hourlyPrice: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewWatcher(Config{Path: path})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `nodes[0].capacityType: "reserved" is not on-demand or spot`) {
		t.Errorf("bad file at start: %v", err)
	}
	if _, err := NewWatcher(Config{Path: filepath.Join(t.TempDir(), "none.yaml")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file at start: %v", err)
	}

	w, reg, _ := newTestWatcher(t, "")
	wantCPU(t, w, DefaultCPUCoreHour)
	wantReloads(t, w, 0, 0)
	if err := w.Reload(); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP penny_pricing_info The prices in force: their currency and source (default: OpenCost's, file, flags); always 1.
# TYPE penny_pricing_info gauge
penny_pricing_info{currency="USD",source="default"} 1
`), "penny_pricing_info"); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	w.Run(ctx) // returns at once
	if _, err := NewWatcher(Config{Registerer: reg}); err == nil {
		t.Error("a second Watcher registered the same metrics")
	}
	neg := -1.0
	if _, err := NewWatcher(Config{Overrides: Overrides{CPUCoreHour: &neg}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative override: %v", err)
	}
}

// TestWatcherRun checks that Run follows a ConfigMap's swaps while readers
// read the prices (run it with -race), and returns when ctx is done.
func TestWatcherRun(t *testing.T) {
	cm := newConfigMapDir(t, map[string]string{"pricing.yaml": priced(0.01)})
	w, err := NewWatcher(Config{Path: cm.path("pricing.yaml"), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				r := w.Rates(Facts{InstanceType: "m5.xlarge", CPUCores: 4, MemoryBytes: 16 * gibBytes})
				if r.CPUCoreHour <= 0 || r.Currency != "USD" {
					t.Errorf("rates %+v", r)
					return
				}
				_ = w.Status().Pricing.Effective()
			}
		})
	}
	for _, cpu := range []float64{0.02, 0.03, 0.04} {
		cm.update(map[string]string{"pricing.yaml": priced(cpu)})
		for w.Rates(Facts{}).CPUCoreHour != cpu { // or the test times out
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	if ok := testutil.ToFloat64(w.reloads.WithLabelValues("ok")); ok != 4 {
		t.Errorf("%v reloads, want 4", ok)
	}
}

// TestReadFileBounded checks that a file that never ends (or grows while
// it is read: no size to check first) is read no further than the limit.
func TestReadFileBounded(t *testing.T) {
	if _, err := ReadFile("/dev/zero"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("/dev/zero: %v", err)
	}
}
