// Command benchagent measures what Penny's agent costs: the kernel time of
// each eBPF program per event, and the agent's CPU and memory, while a mixed
// workload runs in many cgroups. It prints a table next to the targets.
//
// Run it as root through `make bench`; it starts `penny local` itself.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
)

const workloadEnv = "PENNY_BENCH_WORKLOAD"

// Targets from the agent's issue.
const (
	targetNsPerEvent    = 250
	targetHotNsPerEvent = 150  // the programs on every page, segment or packet
	targetCPU           = 0.01 // of one core
	targetRSS           = 50 << 20
)

// hotPrograms run on every page fault, TCP segment or packet: their target
// is targetHotNsPerEvent.
var hotPrograms = map[string]bool{"rss_stat": true, "tcp_probe": true, "skb_ingress": true, "skb_egress": true}

type config struct {
	penny      string
	pennyAgent string
	cgroups    int
	duration   time.Duration
	warmup     time.Duration
	interval   time.Duration
	// requestRate, when positive, adds an HTTP/1.1 server and a client
	// sending it this many requests a second.
	requestRate int
	// pennyArgs are more arguments for penny agent or local
	// (--requests=false).
	pennyArgs string
	// mode is what is measured: "agent" or "local" (startAgent).
	mode string
	// cpuProfile, when set, is where the measured process writes a CPU
	// profile of its whole run (PENNY_CPUPROFILE).
	cpuProfile string
}

func main() {
	if role := os.Getenv(workloadEnv); role != "" {
		// A workload runs until it is killed: it returns only on failure.
		fmt.Fprintln(os.Stderr, "workload:", workload(role))
		os.Exit(1)
	}
	var cfg config
	flag.StringVar(&cfg.penny, "penny", "bin/penny", "the penny binary: penny local in -mode local, the aggregator in -mode agent")
	flag.StringVar(&cfg.pennyAgent, "penny-agent", "bin/penny-agent", "the agent binary measured in -mode agent (penny agent alone: make build)")
	flag.IntVar(&cfg.cgroups, "cgroups", 200, "cgroups, each running one workload process")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "measurement window")
	flag.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "time before measuring")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "the agent's --interval")
	flag.IntVar(&cfg.requestRate, "requests-rate", 0, "also send this many HTTP/1.1 requests a second to a server in a cgroup of its own")
	flag.StringVar(&cfg.pennyArgs, "penny-args", "", "more arguments for penny agent or local, space separated (e.g. --requests=false)")
	flag.StringVar(&cfg.mode, "mode", "agent", "what is measured: agent (penny agent alone, shipping to an aggregator process of its own) "+
		"or local (penny local: the agent and a single-member aggregator in one process)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured process's whole run to this file")
	flag.Parse()
	if cfg.mode != "agent" && cfg.mode != "local" {
		fmt.Fprintf(os.Stderr, "benchagent: -mode %q: want agent or local\n", cfg.mode)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "benchagent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: it loads eBPF programs and creates cgroups")
	}
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("/var/tmp", "penny-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	data := filepath.Join(dataDir, "data")
	if err := writeFile(data, 64<<20); err != nil {
		return err
	}

	root := fmt.Sprintf("/penny-bench-%d", os.Getpid())
	dirs := []string{layout.V2}
	if !layout.MemoryIsV2() {
		dirs = append(dirs, layout.Memory)
	}
	defer removeTree(dirs, root)
	for _, d := range dirs {
		if err := os.Mkdir(d+root, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}

	// An echo server in a cgroup of its own, then the workloads.
	server, err := startIn(ctx, layout, root+"/server", "server", nil)
	if err != nil {
		return err
	}
	addr, err := bufio.NewReader(server.out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("echo server: %w", err)
	}
	addr = strings.TrimSpace(addr)
	procs := []*proc{server}
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	}()
	for i := range cfg.cgroups {
		p, err := startIn(ctx, layout, fmt.Sprintf("%s/w%03d", root, i), "client "+addr+" "+data, nil)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	var requests *requestCounter
	if cfg.requestRate > 0 {
		ps, rc, err := requestLoad(func(path, role string) (*proc, error) {
			return startIn(ctx, layout, path, role, nil)
		}, root, cfg.requestRate)
		procs = append(procs, ps...)
		if err != nil {
			return err
		}
		requests = rc
	}

	// The kernel accounts program run time only while statistics are on.
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable eBPF statistics: %w", err)
	}
	defer stats.Close()
	before, err := programIDs()
	if err != nil {
		return err
	}
	agent, cgroupsPerSample, stopAgent, err := startAgent(ctx, cfg)
	if err != nil {
		return err
	}
	defer stopAgent()

	fmt.Fprintf(os.Stderr, "benchagent: %d cgroups running, warming up for %s, then measuring for %s\n",
		cfg.cgroups, cfg.warmup, cfg.duration)
	if err := sleep(ctx, cfg.warmup); err != nil {
		return err
	}
	progs, err := newPrograms(before)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range progs {
			p.prog.Close()
		}
	}()
	// The floor: an empty program on each hook, next to the agent's.
	fl, err := attachFloors(progs, layout.V2)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchagent:", err)
	}
	defer fl.close()
	measured := slices.Concat(progs, slices.Collect(maps.Values(fl.progs)))
	for _, p := range measured {
		if p.start, err = p.prog.Stats(); err != nil {
			return err
		}
	}
	busy0, total0, err := machineTicks()
	if err != nil {
		return err
	}
	cpu0, err := cpuTicks(agent.Process.Pid)
	if err != nil {
		return err
	}
	var sent0 int64
	if requests != nil {
		sent0 = requests.n.Load()
	}
	t0 := time.Now()
	var rss []int64
	for time.Since(t0) < cfg.duration {
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
		r, err := vmRSS(agent.Process.Pid)
		if err != nil {
			return fmt.Errorf("agent died: %w", err)
		}
		rss = append(rss, r)
	}
	elapsed := time.Since(t0)
	cpu1, err := cpuTicks(agent.Process.Pid)
	if err != nil {
		return err
	}
	busy1, total1, err := machineTicks()
	if err != nil {
		return err
	}
	busy := float64(busy1-busy0) / float64(max(total1-total0, 1))
	for _, p := range measured {
		if p.end, err = p.prog.Stats(); err != nil {
			return err
		}
	}
	perSample := cgroupsPerSample()
	report(os.Stdout, cfg, layout, progs, fl, elapsed, float64(cpu1-cpu0)/100, rss, perSample, busy)
	if requests != nil {
		fmt.Printf("\nrequest load: %.0f HTTP/1.1 requests a second over %d keep-alive connections (asked for %d), penny local %s\n",
			float64(requests.n.Load()-sent0)/elapsed.Seconds(), loadConns, cfg.requestRate, cfg.pennyArgs)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

type proc struct {
	cmd *exec.Cmd
	out io.Reader
}

// startIn starts this binary as a workload born in a new cgroup (and
// joined to the same path in the v1 memory hierarchy in hybrid mode).
func startIn(ctx context.Context, l cgroupfs.Layout, path, role string, _ []string) (*proc, error) {
	if err := os.Mkdir(l.V2+path, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.Open(l.V2 + path)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), workloadEnv+"="+role)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if !l.MemoryIsV2() {
		if err := os.Mkdir(l.Memory+path, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(l.Memory+path+"/cgroup.procs", []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			return nil, err
		}
	}
	return &proc{cmd: cmd, out: out}, nil
}

func removeTree(mounts []string, root string) {
	for _, m := range mounts {
		entries, _ := os.ReadDir(m + root)
		for _, e := range entries {
			if e.IsDir() {
				rmdirRetry(m + root + "/" + e.Name())
			}
		}
		rmdirRetry(m + root)
	}
}

func rmdirRetry(d string) {
	for range 100 {
		if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(path string, size int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n := 0; n < size; n += len(buf) {
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
	return f.Sync()
}

func countRows(r io.Reader, rows chan<- int) {
	s := bufio.NewScanner(r)
	last, n := "", 0
	for s.Scan() {
		ts, _, _ := strings.Cut(s.Text(), " ")
		if ts != last && n > 0 {
			select {
			case rows <- n:
			default:
			}
			n = 0
		}
		last = ts
		n++
	}
	if err := s.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "benchagent: read the agent's output:", err)
	}
}

// program is one of penny's eBPF programs, found by id once it is loaded.
type program struct {
	name       string
	prog       *ebpf.Program
	start, end *ebpf.ProgramStats
}

// perEvent returns the runs between the two statistics and the mean
// run time of one, in ns.
func (p *program) perEvent() (uint64, float64) {
	runs := p.end.RunCount - p.start.RunCount
	if runs == 0 {
		return 0, 0
	}
	return runs, float64((p.end.Runtime - p.start.Runtime).Nanoseconds()) / float64(runs)
}

func programIDs() (map[ebpf.ProgramID]bool, error) {
	ids := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return ids, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list eBPF programs: %w", err)
		}
		ids[next] = true
		id = next
	}
}

// newPrograms opens the programs loaded since before was taken: the agent's.
func newPrograms(before map[ebpf.ProgramID]bool) ([]*program, error) {
	now, err := programIDs()
	if err != nil {
		return nil, err
	}
	var out []*program
	for id := range now {
		if before[id] {
			continue
		}
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		if err != nil {
			p.Close()
			continue
		}
		out = append(out, &program{name: info.Name, prog: p})
	}
	if len(out) == 0 {
		return nil, errors.New("the agent loaded no programs")
	}
	slices.SortFunc(out, func(a, b *program) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces): utime is the
	// 14th field of the line, stime the 15th.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want 13 or more", pid, len(f))
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime: %w", pid, err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: stime: %w", pid, err)
	}
	return ut + st, nil
}

// machineTicks returns the busy and total clock ticks of all CPUs.
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	kv, err := cgroupfs.ParseKV(b, "VmRSS")
	return kv["VmRSS"], err
}

func report(w io.Writer, cfg config, l cgroupfs.Layout, progs []*program, fl *floors, elapsed time.Duration,
	cpuSeconds float64, rss []int64, cgroupsPerSample int, busy float64) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	what := "penny-agent agent (the aggregator in a process of its own, not measured)"
	if cfg.mode == "local" {
		what = "penny local (the agent and a single-member aggregator in one process)"
	}
	fmt.Fprintf(w, "Penny agent benchmark: %d cgroups with a mixed workload, %s measured, %s --interval %s %s\n",
		cfg.cgroups, elapsed.Round(time.Second), what, cfg.interval, cfg.pennyArgs)
	fmt.Fprintf(w, "Linux %s, %d CPUs %.0f%% busy, cgroup layout %s, %d cgroups per sample\n\n",
		unix.ByteSliceToString(uts.Release[:]), runtimeCPUs(), busy*100, l.Mode, cgroupsPerSample)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "eBPF program\tevents/s\tns/event\tempty program\ttarget\t\t")
	for _, p := range progs {
		runs, v := p.perEvent()
		per, verdict, target := "-", "idle", targetNsPerEvent
		if hotPrograms[p.name] {
			target = targetHotNsPerEvent
		}
		if runs > 0 {
			per, verdict = fmt.Sprintf("%.0f", v), ok(v <= float64(target))
		}
		floor := "-"
		if f := fl.of(p.name); f != nil {
			if n, v := f.perEvent(); n > 0 {
				floor = fmt.Sprintf("%.0f", v)
			}
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t≤ %d\t%s\t\n", p.name, float64(runs)/elapsed.Seconds(), per, floor, target, verdict)
	}
	tw.Flush()
	fmt.Fprintln(w, "(empty program: ns/event of a program without instructions on the same hook, attached after the agent's, same events)")
	var sum, peak int64
	for _, r := range rss {
		sum += r
		peak = max(peak, r)
	}
	avg := sum / int64(max(len(rss), 1))
	cpu := cpuSeconds / elapsed.Seconds()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "agent\tmeasured\ttarget\t\t")
	fmt.Fprintf(tw, "CPU, share of one core\t%.2f%%\t≤ %.0f%%\t%s\t\n", cpu*100, targetCPU*100, ok(cpu <= targetCPU))
	fmt.Fprintf(tw, "RSS, average\t%.1f MiB\t≤ %d MiB\t%s\t\n", float64(avg)/(1<<20), targetRSS>>20, ok(avg <= targetRSS))
	fmt.Fprintf(tw, "RSS, peak\t%.1f MiB\t≤ %d MiB\t%s\t\n", float64(peak)/(1<<20), targetRSS>>20, ok(peak <= targetRSS))
	tw.Flush()
	mapTable(w)
}

// The documented bounds of the maps' memory up to 512 CPUs (docs/agent.md,
// "Map memory"; TestMapBytesBounded holds the specs to them).
const (
	mapBoundAtLoad = 32 << 20
	mapBoundFull   = 80 << 20
)

// mapTable prints the maps' memory for this machine's CPUs and larger
// nodes, computed from the specs as the agent sizes them.
func mapTable(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "eBPF maps	at load	every map full	target		")
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		fmt.Fprintf(w, "eBPF maps: %v\n", err)
		return
	}
	for _, n := range []int{ncpu, 64, 256} {
		m, err := probe.MapBytes(n)
		if err != nil {
			fmt.Fprintf(w, "eBPF maps: %v\n", err)
			return
		}
		var load, full uint64
		for _, b := range m {
			load, full = load+b.AtLoad, full+b.Max
		}
		what := fmt.Sprintf("%d CPUs", n)
		if n == ncpu {
			what += " (this machine)"
		}
		fmt.Fprintf(tw, "%s\t%.1f MiB\t%.1f MiB\t≤ %d / %d MiB\t%s\t\n", what, float64(load)/(1<<20), float64(full)/(1<<20),
			mapBoundAtLoad>>20, mapBoundFull>>20, ok(load <= mapBoundAtLoad && full <= mapBoundFull))
	}
	tw.Flush()
}

func ok(b bool) string {
	if b {
		return "ok"
	}
	return "MISSED"
}

func runtimeCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0
	}
	return set.Count()
}

// workload runs in a benchmark cgroup. "server" echoes TCP on loopback;
// "client ADDR FILE" maps, touches and unmaps 64 KiB,
// reads 16 KiB of FILE at a random offset (and every 10 seconds drops a MiB
// of it from the page cache), exchanges 512 bytes with the echo server, and
// reconnects every 10 seconds. The loop runs every 250ms.
func workload(role string) error {
	f := strings.Fields(role)
	switch f[0] {
	case "httpserver":
		return httpServer()
	case "httpload":
		rate, err := strconv.Atoi(f[2])
		if err != nil {
			return err
		}
		return httpLoad(f[1], rate)
	}
	if f[0] == "server" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Println(l.Addr())
		for {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}
	addr, path := f[1], f[2]
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	st, err := file.Stat()
	if err != nil {
		return err
	}
	buf := make([]byte, 16<<10)
	msg := make([]byte, 512)
	var conn net.Conn
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
	for i := 0; ; i++ {
		m, err := unix.Mmap(-1, 0, 64<<10, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		for j := 0; j < len(m); j += 4096 {
			m[j] = 1
		}
		_ = unix.Munmap(m)

		off := rand.Int64N(st.Size()-int64(len(buf))) &^ 4095
		if _, err := file.ReadAt(buf, off); err != nil {
			return err
		}
		if i%40 == 0 {
			_ = unix.Fadvise(int(file.Fd()), rand.Int64N(st.Size()>>20)<<20, 1<<20, unix.FADV_DONTNEED)
		}

		if conn == nil || i%40 == 0 {
			if conn != nil {
				conn.Close()
			}
			if conn, err = net.Dial("tcp", addr); err != nil {
				log.Warn("dial", "err", err)
				conn = nil
			}
		}
		if conn != nil {
			conn = exchange(conn, msg, log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// exchange sends msg to the echo server and reads the echo back into it.
// It returns conn, or nil after closing it when the exchange failed.
func exchange(conn net.Conn, msg []byte, log *slog.Logger) net.Conn {
	_, err := conn.Write(msg)
	if err == nil {
		_, err = io.ReadFull(conn, msg)
	}
	if err != nil {
		log.Warn("exchange with the echo server", "err", err)
		conn.Close()
		return nil
	}
	return conn
}
