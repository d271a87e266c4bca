package local_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/freeport"
	"github.com/pennyhq/penny/internal/testenv"
)

var penny string // the penny binary, built once by TestMain

func TestMain(m *testing.M) {
	cgtest.MaybeHelper()
	dir, err := os.MkdirTemp("", "penny-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by everyone: one test runs the binary as nobody.
	_ = os.Chmod(dir, 0o755)
	penny = filepath.Join(dir, "penny")
	build := exec.Command("go", "build", "-o", penny, "github.com/pennyhq/penny/cmd/penny")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build penny:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func group(t *testing.T) (*cgtest.Group, *cgtest.Proc) {
	t.Helper()
	cgtest.RequireRoot(t)
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	g := cgtest.NewGroup(t, l)
	p := g.Start()
	p.Do("touch %d", 32<<20)
	return g, p
}

func TestOnceJSON(t *testing.T) {
	g, _ := group(t)
	start := time.Now()
	out, err := exec.Command(penny, "local", "--once", "--json", "--interval", "500ms").Output()
	if err != nil {
		t.Fatalf("penny local --once --json: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("--once took %s", took)
	}
	var doc struct {
		Time            string                       `json:"time"`
		IntervalSeconds float64                      `json:"interval_seconds"`
		Cgroups         []map[string]json.RawMessage `json:"cgroups"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if dec.More() {
		t.Errorf("more than one JSON object: %s", out)
	}
	if _, err := time.Parse(time.RFC3339, doc.Time); err != nil {
		t.Errorf("time %q: %v", doc.Time, err)
	}
	if doc.IntervalSeconds < 0.45 || doc.IntervalSeconds > 2 {
		t.Errorf("interval_seconds = %v, want about 0.5", doc.IntervalSeconds)
	}
	var mine map[string]json.RawMessage
	for _, c := range doc.Cgroups {
		if string(c["path"]) == `"`+g.Path+`"` {
			mine = c
		}
		if string(c["path"]) == `"/"` && string(c["id"]) != "1" {
			t.Errorf("root cgroup with id %s", c["id"])
		}
	}
	if mine == nil {
		t.Fatalf("test cgroup %s not listed in %s", g.Path, out)
	}
	if string(mine["id"]) != fmt.Sprint(g.ID) {
		t.Errorf("id %s, want %d", mine["id"], g.ID)
	}
	var rss int64
	if err := json.Unmarshal(mine["rss_bytes"], &rss); err != nil || rss < 32<<20 {
		t.Errorf("rss_bytes %s, want at least 32 MiB", mine["rss_bytes"])
	}
	for _, k := range []string{"page_cache_bytes", "page_cache_hit_ratio", "tcp_srtt_p50_seconds",
		"tcp_srtt_p99_seconds", "tcp_connect_p99_seconds", "tcp_retransmits", "net_rx_bytes", "net_tx_bytes"} {
		if _, ok := mine[k]; !ok {
			t.Errorf("key %s missing", k)
		}
	}
	// A workload with no network in the interval has null latencies.
	if string(mine["tcp_srtt_p50_seconds"]) != "null" || string(mine["tcp_connect_p99_seconds"]) != "null" {
		t.Errorf("idle cgroup latencies %s %s, want null", mine["tcp_srtt_p50_seconds"], mine["tcp_connect_p99_seconds"])
	}
}

// TestOnceJSONCost: with known prices, each cgroup's cost_dollars_per_hour
// is what its usage in the same document costs (no requests outside
// Kubernetes: usage alone), and its parts add up to it.
func TestOnceJSONCost(t *testing.T) {
	g, p := group(t)
	p.Do("burn 50")
	defer p.Do("burnstop")
	const cpuPrice, memPrice, egressPrice = 0.05, 0.01, 0.12 // the last OpenCost's, per internet GiB
	out, err := exec.Command(penny, "local", "--once", "--json", "--interval", "1s",
		"--price-cpu-core-hour", fmt.Sprint(cpuPrice), "--price-memory-gib-hour", fmt.Sprint(memPrice)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("penny local --once --json: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("penny local --once --json: %v", err)
	}
	type cgroup struct {
		Path        string   `json:"path"`
		CPUSeconds  float64  `json:"cpu_usage_seconds"`
		RSS         float64  `json:"rss_bytes"`
		TxInternet  float64  `json:"net_tx_internet_bytes"`
		TxCluster   float64  `json:"net_tx_cluster_bytes"`
		Cost        *float64 `json:"cost_dollars_per_hour"`
		CPUCost     *float64 `json:"cpu_cost_dollars_per_hour"`
		MemoryCost  *float64 `json:"memory_cost_dollars_per_hour"`
		NetworkCost *float64 `json:"network_cost_dollars_per_hour"`
	}
	var doc struct {
		IntervalSeconds float64  `json:"interval_seconds"`
		Cgroups         []cgroup `json:"cgroups"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	const gib = 1 << 30
	// JSON numbers are printed in full (shortest round trip), so only
	// float rounding separates the two computations.
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12+1e-9*math.Abs(b) }
	var mine *cgroup
	for i := range doc.Cgroups {
		c := &doc.Cgroups[i]
		if c.Path == g.Path {
			mine = c
		}
		if c.Cost == nil || c.CPUCost == nil || c.MemoryCost == nil || c.NetworkCost == nil {
			t.Errorf("%s: no cost", c.Path)
			continue
		}
		iv := doc.IntervalSeconds
		cpu, mem := c.CPUSeconds/iv*cpuPrice, c.RSS/gib*memPrice
		network := c.TxInternet / iv * 3600 / gib * egressPrice // in-cluster egress is free by default
		if !near(*c.CPUCost, cpu) || !near(*c.MemoryCost, mem) || !near(*c.NetworkCost, network) ||
			!near(*c.Cost, cpu+mem+network) {
			t.Errorf("%s: cost %v (CPU %v, memory %v, network %v), from its usage %v (%v, %v, %v)", c.Path,
				*c.Cost, *c.CPUCost, *c.MemoryCost, *c.NetworkCost, cpu+mem+network, cpu, mem, network)
		}
	}
	if mine == nil {
		t.Fatalf("test cgroup %s not listed in %s", g.Path, out)
	}
	// Half a core and at least 32 MiB: about 0.025 + 0.0003 per hour.
	if *mine.CPUCost < 0.25*cpuPrice || *mine.MemoryCost < 32.0/1024*memPrice {
		t.Errorf("test cgroup: CPU %v, memory %v per hour; want about %v and at least %v", *mine.CPUCost, *mine.MemoryCost,
			0.5*cpuPrice, 32.0/1024*memPrice)
	}
}

func TestMetricsAndHealthz(t *testing.T) {
	g, _ := group(t)
	addr := freeport.T(t)
	p := startService(t, "--listen", addr, "--bpf-stats")

	var metrics string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if code, _ := httpGet("http://" + addr + "/healthz"); code != http.StatusOK {
			continue
		}
		_, metrics = httpGet("http://" + addr + "/metrics")
		if strings.Contains(metrics, `penny_cgroup_memory_rss_bytes{cgroup="`+g.Path+`"}`) {
			break
		}
	}
	for _, want := range []string{
		`penny_cgroup_memory_rss_bytes{cgroup="` + g.Path + `"}`,
		`penny_cgroup_tcp_srtt_seconds_bucket{cgroup="/",le="+Inf"}`,
		`penny_agent_bpf_program_runs_total{program="rss_stat"}`,
		`penny_agent_sample_duration_seconds_count`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s; stderr: %s", want, p.stderr.String())
		}
	}
	if promtool, ok := testenv.LookTool(t, "promtool", "apt-get install prometheus"); ok {
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(metrics)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	p.stop(t)
}

func TestLocalAggregatorServesContainers(t *testing.T) {
	g, _ := group(t)
	api := freeport.T(t)
	p := startService(t, "--api-listen", api, "--node-name", "test-node")
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		code, b := httpGet("http://" + api + "/v1/containers?node=test-node&consistency=linearizable")
		if code == http.StatusOK && strings.Contains(b, `"path":"`+g.Path+`"`) {
			body = b
			break
		}
	}
	if body == "" {
		t.Fatalf("the in-process aggregator never showed %s; stderr: %s", g.Path, p.stderr.String())
	}
	var doc struct {
		Containers []struct {
			Node     string `json:"node"`
			Path     string `json:"path"`
			RSSBytes int64  `json:"rss_bytes"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Containers {
		if c.Path == g.Path && (c.Node != "test-node" || c.RSSBytes < 32<<20) {
			t.Errorf("%s in the store: %+v", g.Path, c)
		}
	}
	p.stop(t)
}

// TestLocalShipsNodeFacts: the facts given on the command line, and the
// host's capacity, reach the in-process aggregator's GET /v1/nodes.
func TestLocalShipsNodeFacts(t *testing.T) {
	cgtest.RequireRoot(t)
	api := freeport.T(t)
	p := startService(t, "--api-listen", api, "--node-name", "test-node", "--instance-type", "bare-metal",
		"--region", "home", "--zone", "rack-2", "--capacity-type", "spot")
	type node struct {
		Node              string `json:"node"`
		InstanceType      string `json:"instance_type"`
		Region            string `json:"region"`
		Zone              string `json:"zone"`
		CapacityType      string `json:"capacity_type"`
		CapacityCPUMillis int64  `json:"capacity_cpu_millis"`
		CapacityMemory    int64  `json:"capacity_memory_bytes"`
		Source            string `json:"facts_source"`
		Series            int    `json:"series"`
	}
	var doc struct {
		Nodes []node `json:"nodes"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(doc.Nodes) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the in-process aggregator never showed test-node in /v1/nodes; stderr: %s", p.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
		if code, b := httpGet("http://" + api + "/v1/nodes?consistency=linearizable"); code == http.StatusOK {
			if err := json.Unmarshal([]byte(b), &doc); err != nil {
				t.Fatal(err)
			}
		}
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	got := doc.Nodes[0]
	want := node{Node: "test-node", InstanceType: "bare-metal", Region: "home", Zone: "rack-2", CapacityType: "spot",
		CapacityCPUMillis: got.CapacityCPUMillis, CapacityMemory: int64(si.Totalram) * int64(si.Unit), Source: "flags,host",
		Series: got.Series}
	if len(doc.Nodes) != 1 || got != want || got.CapacityCPUMillis < 1000 || got.Series == 0 {
		t.Errorf("/v1/nodes: %+v, want %+v", doc.Nodes, want)
	}
	p.stop(t)
}

// service is `penny local --json` running as a service would, its output
// discarded and its stderr kept for failure messages.
type service struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func startService(t *testing.T, args ...string) *service {
	t.Helper()
	p := &service{cmd: exec.Command(penny, append([]string{"local", "--json", "--interval", "300ms"}, args...)...)}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// stop sends SIGTERM, which must stop it cleanly within 5 seconds.
func (p *service) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitTimeout(p.cmd, 5*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v; stderr: %s", err, p.stderr.String())
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitTimeout(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		return fmt.Errorf("did not exit within %s", d)
	}
}

func TestPlainRowsWhenNotATerminal(t *testing.T) {
	g, _ := group(t)
	cmd := exec.Command(penny, "local", "--interval", "300ms")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(out)
	header, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(header, "TIME") || !strings.HasSuffix(header, "CGROUP\n") {
		t.Fatalf("header %q, %v", header, err)
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 2 && time.Now().Before(deadline) {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		if _, err := time.Parse(time.RFC3339, f[0]); err != nil {
			t.Fatalf("row without a time: %q", line)
		}
		if f[len(f)-1] == g.Path {
			seen[f[0]] = true // one row per interval
		}
	}
	if len(seen) < 2 {
		t.Fatalf("test cgroup in %d intervals, want 2", len(seen))
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, r)
	if err := waitTimeout(cmd, 5*time.Second); err != nil {
		t.Fatalf("after SIGINT: %v; stderr: %s", err, stderr.String())
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testenv.Skipf(t, "no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 120}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func TestLiveTableQuitsOnQ(t *testing.T) {
	g, _ := group(t)
	m, s := openPTY(t)
	cmd := exec.Command(penny, "local", "--interval", "300ms")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	screen := make(chan string, 64)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := m.Read(buf)
			if n > 0 {
				screen <- string(buf[:n])
			}
			if err != nil {
				close(screen)
				return
			}
		}
	}()
	var all strings.Builder
	deadline := time.After(10 * time.Second)
	for !strings.Contains(all.String(), g.Path) {
		select {
		case chunk, ok := <-screen:
			if !ok {
				t.Fatalf("terminal closed: %q", all.String())
			}
			all.WriteString(chunk)
		case <-deadline:
			t.Fatalf("test cgroup never shown: %q", all.String())
		}
	}
	for _, want := range []string{"\x1b[?1049h", "CGROUP", "PROCS", "RSS", "(q quits)"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	for _, line := range strings.Split(all.String(), "\n") {
		if n := len([]rune(strings.TrimRight(line, "\r"))); n > 120+20 { // escape codes at the line start
			t.Errorf("line wider than the terminal (%d): %q", n, line)
		}
	}
	if _, err := m.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if err := waitTimeout(cmd, 5*time.Second); err != nil {
		time.Sleep(100 * time.Millisecond)
		for chunk := range drain(screen) {
			all.WriteString(chunk)
		}
		tail := all.String()
		tail = tail[max(0, len(tail)-4096):]
		t.Fatalf("after q: %v; the screen's end (stderr included): %q", err, tail)
	}
	time.Sleep(100 * time.Millisecond)
	for chunk := range drain(screen) {
		all.WriteString(chunk)
	}
	if !strings.Contains(all.String(), "\x1b[?1049l") {
		t.Error("the terminal's screen was not restored")
	}
}

func drain(c chan string) chan string {
	out := make(chan string, cap(c))
	for {
		select {
		case s, ok := <-c:
			if !ok {
				close(out)
				return out
			}
			out <- s
		default:
			close(out)
			return out
		}
	}
}

func TestErrorLines(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		nobody bool
		code   int
		stderr string // the whole of stderr, or its first line when usage follows
	}{
		{name: "interval too short", args: []string{"local", "--interval", "1ms"}, code: 2,
			stderr: "penny local: interval 1ms is too short: at least 100ms\n"},
		{name: "unknown flag", args: []string{"local", "--bogus"}, code: 2,
			stderr: "penny local: unknown flag: --bogus\n"},
		{name: "unknown single-dash flag", args: []string{"local", "-bogus"}, code: 2,
			stderr: "penny local: unknown flag: -bogus\n"},
		{name: "unknown command", args: []string{"lokal"}, code: 2, stderr: "penny: unknown command \"lokal\"\n"},
		{name: "not root", args: []string{"local", "--once"}, nobody: true, code: 1,
			stderr: "penny local: not allowed to load eBPF programs: missing CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN; " +
				"run penny as root (sudo) or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(context.Background(), penny, tt.args...)
			if tt.nobody {
				cgtest.RequireRoot(t)
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			got := stderr.String()
			if tt.code == 2 {
				got, _, _ = strings.Cut(got, "\n")
				got += "\n"
			}
			if got != tt.stderr {
				t.Errorf("stderr\n got: %q\nwant: %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestLocalPricing checks that penny local hands its pricing file and
// price flags to the in-process aggregator, which serves them on
// GET /v1/pricing.
func TestLocalPricing(t *testing.T) {
	cgtest.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "pricing.yaml")
	if err := os.WriteFile(file, []byte("apiVersion: penny.dev/v1\nkind: Pricing\ndefaults:\n  cpuCoreHour: 0.04\n  ramGiBHour: 0.005\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := freeport.T(t)
	p := startService(t, "--api-listen", api, "--pricing-file", file, "--price-cpu-core-hour", "0.05")
	var got pricing.Response
	deadline := time.Now().Add(15 * time.Second)
	for got.Pricing == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if code, b := httpGet("http://" + api + pricing.Path); code == http.StatusOK {
			if err := json.Unmarshal([]byte(b), &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got.Pricing == nil {
		t.Fatalf("no %s; stderr: %s", pricing.Path, p.stderr.String())
	}
	if got.Source != pricing.SourceFile || got.File != file || got.Overrides == nil || *got.Overrides.CPUCoreHour != 0.05 ||
		*got.Pricing.Defaults.CPUCoreHour != 0.05 || *got.Pricing.Defaults.RAMGiBHour != 0.005 {
		t.Errorf("%s: %+v", pricing.Path, got)
	}

	// The in-process aggregator's readers price with them: the host's
	// capacity in GET /v1/nodes and on its /metrics, and its cgroups.
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	type node struct {
		Node              string   `json:"node"`
		CapacityCPUMillis float64  `json:"capacity_cpu_millis"`
		Cost              *float64 `json:"cost_dollars_per_hour"`
		Idle              *float64 `json:"idle_cost_dollars_per_hour"`
	}
	var nodes struct {
		Currency string `json:"currency"`
		Nodes    []node `json:"nodes"`
	}
	for len(nodes.Nodes) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if code, b := httpGet("http://" + api + "/v1/nodes?consistency=linearizable"); code == http.StatusOK {
			if err := json.Unmarshal([]byte(b), &nodes); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].Cost == nil {
		t.Fatalf("/v1/nodes: %+v; stderr: %s", nodes, p.stderr.String())
	}
	n := nodes.Nodes[0]
	want := n.CapacityCPUMillis/1000*0.05 + float64(si.Totalram)*float64(si.Unit)/(1<<30)*0.005
	if math.Abs(*n.Cost-want) > 1e-9 || nodes.Currency != "USD" || *n.Idle > *n.Cost {
		t.Errorf("node cost %v (idle %v), want %v: the host's capacity at 0.05/core-h and 0.005/GiB-h", *n.Cost, *n.Idle, want)
	}
	_, metrics := httpGet("http://" + api + "/metrics")
	line := grepLines(metrics, fmt.Sprintf("penny_node_cost_dollars_per_hour{node=%q} ", n.Node))
	if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err != nil || math.Abs(v-want) > 1e-9 {
		t.Errorf("/metrics: node cost %q, want %v:\n%s", line, want, grepLines(metrics, "cost_dollars"))
	}
	_, b := httpGet("http://" + api + "/v1/containers?consistency=linearizable")
	var cs struct {
		Containers []struct {
			Path       string   `json:"path"`
			Window     float64  `json:"window_seconds"`
			CPUSeconds float64  `json:"cpu_usage_seconds"`
			RSS        float64  `json:"rss_bytes"`
			TxInternet float64  `json:"net_tx_internet_bytes"`
			Cost       *float64 `json:"cost_dollars_per_hour"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(b), &cs); err != nil || len(cs.Containers) == 0 {
		t.Fatalf("/v1/containers: %s: %v", b, err)
	}
	for _, c := range cs.Containers {
		want := c.CPUSeconds/c.Window*0.05 + c.RSS/(1<<30)*0.005 + c.TxInternet/c.Window*3600/(1<<30)*0.12
		if c.Cost == nil || math.Abs(*c.Cost-want) > 1e-9 {
			t.Errorf("%s: cost %v, want %v", c.Path, c.Cost, want)
		}
	}
	p.stop(t)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
