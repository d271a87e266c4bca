package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/freeport"
)

// agentProc is a `penny agent` process.
type agentProc struct {
	cmd     *exec.Cmd
	metrics string // address of its /metrics
	log     string
}

func startAgent(t *testing.T, bin string, urls []string, node string, extra ...string) *agentProc {
	t.Helper()
	a := &agentProc{metrics: freeport.T(t), log: filepath.Join(t.TempDir(), "agent.log")}
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"agent", "--aggregator", strings.Join(urls, ","), "--node-name", node,
		"--interval", "300ms", "--listen", a.metrics}, extra...)
	a.cmd = exec.Command(bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(a.log)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("last log lines of the agent:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	return a
}

// scrape returns the value of one series of a Prometheus endpoint, and
// false when it is absent.
func scrape(url, name string, labels map[string]string) (float64, bool) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, false
	}
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

type container struct {
	Node     string `json:"node"`
	Path     string `json:"path"`
	RSSBytes int64  `json:"rss_bytes"`
}

// containerOn reads one container from a replica's gateway.
func containerOn(r *replica, node, path string) (container, bool) {
	resp, err := http.Get("http://" + r.api + "/v1/containers?node=" + node)
	if err != nil {
		return container{}, false
	}
	defer resp.Body.Close()
	var doc struct {
		Containers []container `json:"containers"`
	}
	if b, _ := io.ReadAll(resp.Body); json.Unmarshal(b, &doc) != nil {
		return container{}, false
	}
	for _, c := range doc.Containers {
		if c.Path == path {
			return c, true
		}
	}
	return container{}, false
}

func eventually(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestPipeline streams a real agent's samples to three aggregator
// processes: every replica answers with the workload's real values; the
// leader is SIGKILLed mid-stream and restarted; then every replica is down
// for 30 seconds and comes back. The agent's buffer covers the gap, and the
// totals every replica ends with are exactly the agent's: no acknowledged
// frame lost, none counted twice.
func TestPipeline(t *testing.T) {
	cgtest.RequireRoot(t)
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(t, 3)
	c.waitHealthy(c.replicas...)
	var urls []string
	for _, r := range c.replicas {
		urls = append(urls, "http://"+r.api)
	}
	g := cgtest.NewGroup(t, layout)
	server, client := g.Start(), g.Start()
	server.Do("touch %d", 64<<20)
	addr := server.Do("echo")
	client.Do("pingpong %s 4096", addr)

	const node = "e2e-node"
	a := startAgent(t, c.bin, urls, node)
	agentMetrics := "http://" + a.metrics + "/metrics"

	// Every replica shows the workload, within 5% of /proc's truth.
	for _, r := range c.replicas {
		eventually(t, fmt.Sprintf("replica %d shows the workload", r.id), 20*time.Second, func() error {
			got, ok := containerOn(r, node, g.Path)
			if !ok {
				return fmt.Errorf("%s not there yet", g.Path)
			}
			truth := g.SumVmRSS()
			if math.Abs(float64(got.RSSBytes-truth)) > 0.05*float64(truth) {
				return fmt.Errorf("RSS %d, /proc says %d", got.RSSBytes, truth)
			}
			return nil
		})
	}

	// SIGKILL the leader mid-stream, and bring it back.
	lead := c.leader()
	c.kill(lead)
	time.Sleep(2 * time.Second)
	c.start(lead)
	c.waitHealthy(lead)

	// Every replica down for 30 seconds; the agent keeps sampling.
	for _, r := range c.replicas {
		c.kill(r)
	}
	time.Sleep(30 * time.Second)
	for _, r := range c.replicas {
		c.start(r)
	}
	c.waitHealthy(c.replicas...)

	// Quiesce, then compare totals: the agent's own counters against every
	// replica's, to the byte.
	client.Do("pingstop")
	eventually(t, "the agent's buffer drains", 30*time.Second, func() error {
		if v, _ := scrape(agentMetrics, "penny_agent_frame_buffer_frames", nil); v > 1 {
			return fmt.Errorf("%v frames unacknowledged", v)
		}
		return nil
	})
	if v, _ := scrape(agentMetrics, "penny_agent_frames_dropped_total", nil); v != 0 {
		t.Errorf("the agent dropped %v frames", v)
	}
	if v, _ := scrape(agentMetrics, "penny_agent_frames_resent_total", nil); v == 0 {
		t.Errorf("no frame was resent, though every replica went away")
	}
	for _, pair := range [][2]string{
		{"penny_cgroup_network_transmit_bytes_total", "penny_container_network_transmit_bytes_total"},
		{"penny_cgroup_network_receive_bytes_total", "penny_container_network_receive_bytes_total"},
		{"penny_cgroup_page_cache_added_bytes_total", "penny_container_page_cache_added_bytes_total"},
	} {
		for _, r := range c.replicas {
			eventually(t, fmt.Sprintf("replica %d: %s equals the agent's", r.id, pair[1]), 10*time.Second, func() error {
				want, ok := scrape(agentMetrics, pair[0], map[string]string{"cgroup": g.Path})
				if !ok {
					return fmt.Errorf("agent has no %s", pair[0])
				}
				got, ok := scrape("http://"+r.api+"/metrics", pair[1], map[string]string{"cgroup": g.Path, "node": node})
				if !ok || got != want {
					return fmt.Errorf("replica %v, agent %v", got, want)
				}
				if want == 0 && strings.Contains(pair[0], "network") {
					return fmt.Errorf("no traffic counted at all")
				}
				if r.id == 1 {
					t.Logf("%s: %v on the agent and every replica", pair[1], want)
				}
				return nil
			})
		}
	}
}
