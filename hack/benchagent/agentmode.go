package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pennyhq/penny/internal/freeport"
)

// startAgent starts what is measured: `penny local` (the agent and a
// single-member aggregator in one process), or, in -mode agent, `penny
// agent` alone, shipping to a `penny aggregator` of its own that is not
// measured: the agent's budget is the agent's. It returns the measured
// process, a function that counts the cgroups of the last sample, and a
// stop function.
func startAgent(ctx context.Context, cfg config) (*exec.Cmd, func() int, func(), error) {
	args := strings.Fields(cfg.pennyArgs)
	if cfg.mode == "local" {
		agent := exec.CommandContext(ctx, cfg.penny, append([]string{"local", "--interval", cfg.interval.String()}, args...)...)
		profileEnv(agent, cfg)
		out, err := agent.StdoutPipe()
		if err != nil {
			return nil, nil, nil, err
		}
		agent.Stderr = os.Stderr
		if err := agent.Start(); err != nil {
			return nil, nil, nil, fmt.Errorf("start %s: %w", cfg.penny, err)
		}
		rows := make(chan int, 1024)
		go countRows(out, rows)
		perSample := func() int {
			n := 0
			for range len(rows) {
				n = max(n, <-rows)
			}
			return n
		}
		return agent, perSample, func() { stop(agent) }, nil
	}
	dir, err := os.MkdirTemp("", "penny-benchagent-")
	if err != nil {
		return nil, nil, nil, err
	}
	api, peer, metrics := freeAddr(), freeAddr(), freeAddr()
	if api == "" || peer == "" || metrics == "" {
		return nil, nil, nil, errors.New("no free port")
	}
	agg := exec.CommandContext(ctx, cfg.penny, "aggregator", "--id", "1", "--data-dir", filepath.Join(dir, "data"),
		"--listen", api, "--peer-listen", peer, "--initial-cluster", "1=http://"+peer, "--cluster-token", "benchagent")
	agg.Stderr = nil
	if err := agg.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, fmt.Errorf("start the aggregator: %w", err)
	}
	if err := waitHealthy(ctx, "http://"+api+"/v1/health"); err != nil {
		stop(agg)
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	agent := exec.CommandContext(ctx, cfg.pennyAgent, append([]string{"agent", "--aggregator", "http://" + api,
		"--interval", cfg.interval.String(), "--node-name", "benchagent", "--kubernetes", "off", "--listen", metrics}, args...)...)
	agent.Stderr = os.Stderr
	profileEnv(agent, cfg)
	if err := agent.Start(); err != nil {
		stop(agg)
		os.RemoveAll(dir)
		return nil, nil, nil, fmt.Errorf("start %s: %w", cfg.pennyAgent, err)
	}
	perSample := func() int { return countSeries("http://" + metrics + "/metrics") }
	return agent, perSample, func() { stop(agent); stop(agg); os.RemoveAll(dir) }, nil
}

// profileEnv has the measured process write a CPU profile when asked to
// (-cpuprofile); the aggregator beside it writes none.
func profileEnv(c *exec.Cmd, cfg config) {
	if cfg.cpuProfile != "" {
		c.Env = append(os.Environ(), "PENNY_CPUPROFILE="+cfg.cpuProfile)
	}
}

func stop(c *exec.Cmd) {
	_ = c.Process.Signal(syscall.SIGTERM)
	_ = c.Wait()
}

func freeAddr() string {
	a, err := freeport.Addr()
	if err != nil {
		return ""
	}
	return a
}

func waitHealthy(ctx context.Context, url string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s never became healthy", url)
}

// countSeries counts the cgroups the agent's /metrics has an RSS for.
func countSeries(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	n := 0
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "penny_cgroup_memory_rss_bytes{") {
			n++
		}
	}
	return n
}
