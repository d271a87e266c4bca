package local_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/freeport"
)

// TestLocalAllocation runs `penny local` with known prices while real
// workloads run in real cgroups, and checks, for each cgroup, the cost
// GET /v1/allocation?aggregate=container gives two whole minutes of the
// run against the test's own computation over the same minutes: CPU time
// from cpu.stat (usage_usec, read at the minute boundaries) and RSS from
// /proc (the processes' VmRSS, sampled every half second), at the prices
// given on the command line. Each part is within 1%. It takes two to
// three minutes: the history rolls up real minutes.
func TestLocalAllocation(t *testing.T) {
	cgtest.RequireRoot(t)
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	type workload struct {
		g           *cgtest.Group
		burn        int   // percent of a core
		touch       int64 // bytes of anonymous memory
		cpu0, cpu1  int64 // usage_usec at the window's edges
		rssSum      float64
		rssSamples  int
		wantCPU     float64
		wantRAM     float64
		allocCPU    float64
		allocRAM    float64
		allocFound  bool
		allocMinute float64
	}
	ws := []*workload{{burn: 50, touch: 64 << 20}, {touch: 256 << 20}, {burn: 20, touch: 128 << 20}}
	for _, w := range ws {
		w.g = cgtest.NewGroup(t, layout)
		p := w.g.Start()
		p.Do("touch %d", w.touch)
		if w.burn > 0 {
			p.Do("burn %d", w.burn)
			t.Cleanup(func() { p.Do("burnstop") })
		}
	}
	// Per core-hour and GiB-hour: high, so that the answer's 6 decimals
	// are far below 1% of two minutes' cost.
	const cpuPrice, ramPrice = 10, 20
	api := freeport.T(t)
	cmd := exec.Command(penny, "local", "--json", "--interval", "200ms", "--api-listen", api,
		"--price-cpu-core-hour", fmt.Sprint(cpuPrice), "--price-memory-gib-hour", fmt.Sprint(ramPrice))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + api
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := httpGet(base + "/v1/containers?consistency=linearizable")
		seen := 0
		for _, w := range ws {
			if strings.Contains(body, `"path":"`+w.g.Path+`"`) {
				seen++
			}
		}
		if seen == len(ws) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("penny local never showed the test cgroups; stderr: %s", stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Two whole minutes from the next boundary that is at least 2 s away.
	from := time.Now().Add(2 * time.Second).Truncate(time.Minute).Add(time.Minute)
	to := from.Add(2 * time.Minute)
	time.Sleep(time.Until(from))
	for _, w := range ws {
		w.cpu0 = w.g.CPU().UsageUsec
	}
	for time.Now().Before(to) {
		for _, w := range ws {
			w.rssSum += float64(w.g.SumVmRSS())
			w.rssSamples++
		}
		time.Sleep(min(500*time.Millisecond, time.Until(to)))
	}
	for _, w := range ws {
		w.cpu1 = w.g.CPU().UsageUsec
		secs := to.Sub(from).Seconds()
		w.wantCPU = float64(w.cpu1-w.cpu0) / 1e6 / 3600 * cpuPrice
		w.wantRAM = w.rssSum / float64(w.rssSamples) * secs / 3600 / (1 << 30) * ramPrice
	}

	// The roll of the last minute comes 5 s after its end.
	q := url.Values{"window": {from.UTC().Format(time.RFC3339) + "," + to.UTC().Format(time.RFC3339)},
		"aggregate": {"container"}, "accumulate": {"true"}, "idle": {"false"}, "consistency": {"linearizable"}}
	deadline = time.Now().Add(30 * time.Second)
	var body string
	for {
		var code int
		code, body = httpGet(base + "/v1/allocation?" + q.Encode())
		if code != http.StatusOK {
			t.Fatalf("GET /v1/allocation: %d %s", code, body)
		}
		var r cost.Response
		if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Data) != 1 {
			t.Fatalf("GET /v1/allocation: %s: %v", body, err)
		}
		done := true
		for _, w := range ws {
			a := r.Data[0][w.g.Path]
			w.allocFound = a != nil
			if a == nil || a.Minutes() < to.Sub(from).Minutes() {
				done = false
				continue
			}
			w.allocCPU, w.allocRAM, w.allocMinute = a.CPUCost, a.RAMCost, a.Minutes()
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two minutes were never rolled up: %s\nstderr: %s", body, stderr.String())
		}
		time.Sleep(time.Second)
	}
	within := func(got, want, total float64) bool { return math.Abs(got-want) <= 0.01*max(want, 0.01*total) }
	for _, w := range ws {
		total := w.wantCPU + w.wantRAM
		t.Logf("%s: burn %d%%, touch %d MiB: CPU %.6f (cgroupfs %.6f), RAM %.6f (/proc %.6f) over %v minutes",
			w.g.Path, w.burn, w.touch>>20, w.allocCPU, w.wantCPU, w.allocRAM, w.wantRAM, w.allocMinute)
		if !within(w.allocCPU, w.wantCPU, total) || !within(w.allocRAM, w.wantRAM, total) ||
			!within(w.allocCPU+w.allocRAM, total, total) {
			t.Errorf("%s: GET /v1/allocation charges CPU %.6f and RAM %.6f; cgroupfs and /proc say %.6f and %.6f",
				w.g.Path, w.allocCPU, w.allocRAM, w.wantCPU, w.wantRAM)
		}
	}
}
