package local_test

import (
	"bufio"
	"encoding/json"
	"math"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/freeport"
)

// requestsRow is what the request tests read of a cgroup, in the JSON
// document and in /v1/containers.
type requestsRow struct {
	Path     string   `json:"path"`
	Requests uint64   `json:"requests"`
	P50      *float64 `json:"request_latency_p50_seconds"`
	P99      *float64 `json:"request_latency_p99_seconds"`
}

// TestLocalRequests: requests a server in one cgroup answers reach `penny
// local --json` and the in-process aggregator's /v1/containers, charged
// to the server's cgroup and not the client's, each within a percent of
// what the client sent, with the server's service time as their latency.
func TestLocalRequests(t *testing.T) {
	cgtest.RequireRoot(t)
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	g := cgtest.NewGroup(t, l)
	servers, clients := g.Child("server"), g.Child("client")
	srv, cli := servers.Start(), clients.Start()
	addr := srv.Do("reqserve http 20")

	api := freeport.T(t)
	cmd := exec.Command(penny, "local", "--json", "--interval", "300ms", "--api-listen", api, "--node-name", "test-node")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var mu sync.Mutex
	sums := map[string]uint64{} // requests by path, over every document
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(nil, 16<<20)
		for s.Scan() {
			var doc struct {
				Cgroups []requestsRow `json:"cgroups"`
			}
			if json.Unmarshal(s.Bytes(), &doc) != nil {
				continue
			}
			mu.Lock()
			for _, c := range doc.Cgroups {
				sums[c.Path] += c.Requests
			}
			mu.Unlock()
		}
	}()

	// Until the aggregator holds the server's series: the load comes
	// after its first sample, so a window from it holds every request.
	containers := func(window string) map[string]requestsRow {
		t.Helper()
		code, b := httpGet("http://" + api + "/v1/containers?node=test-node&consistency=linearizable&window=" + window)
		if code != http.StatusOK {
			return nil
		}
		var doc struct {
			Containers []requestsRow `json:"containers"`
		}
		if err := json.Unmarshal([]byte(b), &doc); err != nil {
			t.Fatalf("/v1/containers: %v: %s", err, b)
		}
		rows := map[string]requestsRow{}
		for _, c := range doc.Containers {
			rows[c.Path] = c
		}
		return rows
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, ok := containers("1m")[servers.Path]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aggregator never showed %s; stderr: %s", servers.Path, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a second sample of the series, its first checkpoint

	const n = 600
	client, err := cgtest.ParseLoad(cli.Do("reqload h1 %s %d 6", addr, n))
	if err != nil {
		t.Fatal(err)
	}
	if client.Answered != n {
		t.Fatalf("%d of %d requests answered", client.Answered, n)
	}
	time.Sleep(1500 * time.Millisecond) // a few samples, shipped and applied

	mu.Lock()
	inJSON, clientJSON := sums[servers.Path], sums[clients.Path]
	mu.Unlock()
	rows := containers("1m")
	server, clientRow := rows[servers.Path], rows[clients.Path]
	t.Logf("%d requests sent (the client saw p50 %s, p99 %s); penny local --json: server %d, client %d; "+
		"/v1/containers over 1m: server %d (p50 %v, p99 %v), client %d",
		n, client.P50, client.P99, inJSON, clientJSON, server.Requests, deref(server.P50), deref(server.P99), clientRow.Requests)
	for what, got := range map[string]uint64{"the JSON documents": inJSON, "/v1/containers": server.Requests} {
		if math.Abs(float64(got)-n) > n/100 {
			t.Errorf("%s count %d requests for the server, want %d (±1%%)", what, got, n)
		}
	}
	if clientJSON != 0 || clientRow.Requests != 0 {
		t.Errorf("the client's cgroup counted requests: %d in the JSON, %d in /v1/containers", clientJSON, clientRow.Requests)
	}
	// 20ms of service time: the true quantiles lie between it and what the
	// client saw (more on a busy machine), and the measured ones within
	// 10% of them (agent/sampler's checkServiceTime).
	for _, q := range []struct {
		v      *float64
		client time.Duration
	}{{server.P50, client.P50}, {server.P99, client.P99}} {
		hi := 1.1 * max(q.client.Seconds(), 0.020)
		if q.v == nil || *q.v < 0.9*0.020 || *q.v > hi {
			t.Errorf("server latency quantile %v, want within [18ms, %gs]: 10%% around the service time, "+
				"20ms, and the client's %s", deref(q.v), hi, q.client)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
