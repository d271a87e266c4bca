package cgtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const helperEnv = "PENNY_CGTEST_HELPER"

// MaybeHelper turns the process into a workload helper and exits when the
// test binary was started by Group.Start. Call it first in TestMain.
func MaybeHelper() {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	os.Exit(helperMain(os.Stdin, os.Stdout))
}

// Proc is a helper process running in a test cgroup. It executes one
// command per Do and answers with one line.
type Proc struct {
	Pid int
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// Start starts a helper in the group. It is born in the group's v2 cgroup
// (clone3 with CLONE_INTO_CGROUP) and joins the v1 memory and cpu cgroups
// before it runs any command. It is killed when the test ends.
func (g *Group) Start() *Proc {
	g.t.Helper()
	dir, err := os.Open(g.dirV2())
	if err != nil {
		g.t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	p := startHelper(g.t, cmd)
	if !g.Layout.MemoryIsV2() {
		g.write(g.dirMem(), "cgroup.procs", strconv.Itoa(p.Pid))
	}
	if g.cpuV1() {
		g.write(g.dirCPU(), "cgroup.procs", strconv.Itoa(p.Pid))
	}
	p.Do("ping")
	return p
}

// StartCommand starts a helper through cmd, which runs the test binary as
// Start does (os.Args[0] -test.run=^$), wrapped in another command (`ip
// netns exec NS`, say) or not; it stays in the cgroup cmd gives it. It is
// killed when the test ends.
func StartCommand(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := startHelper(t, cmd)
	p.Do("ping")
	return p
}

// startHelper starts cmd as a helper with pipes to talk to it.
func startHelper(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	p := &Proc{Pid: cmd.Process.Pid, t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(p.Stop)
	return p
}

// Do sends one command and returns the helper's answer; it fails the test
// when the helper reports an error or dies.
func (p *Proc) Do(format string, args ...any) string {
	p.t.Helper()
	reply, err := p.Try(format, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return reply
}

// Try sends one command and returns the helper's answer, or an error when
// the helper reports one or dies. Unlike Do it may be called from a
// goroutine other than the test's, one at a time.
func (p *Proc) Try(format string, args ...any) (string, error) {
	line := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(p.in, line); err != nil {
		return "", fmt.Errorf("helper %d: send %q: %w", p.Pid, line, err)
	}
	reply, err := p.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("helper %d: %q: no reply: %w", p.Pid, line, err)
	}
	reply = strings.TrimSpace(reply)
	if rest, ok := strings.CutPrefix(reply, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("helper %d: %q: %s", p.Pid, line, reply)
}

// Stop kills the helper and waits for it.
func (p *Proc) Stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.in.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// helper state: memory it holds and its background TCP work.
type helper struct {
	mem      [][]byte
	pingStop chan struct{}
	pingDone chan uint64
	// streamStop ends the stream command's sender.
	streamStop chan struct{}
	// burnStop ends the burn command's loop; burnDone answers with the
	// CPU time it used.
	burnStop chan struct{}
	burnDone chan time.Duration
	// rate is the rateserve server.
	rate *rateServer
}

func helperMain(in io.Reader, out io.Writer) int {
	h := &helper{}
	s := bufio.NewScanner(in)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "exit" {
			fmt.Fprintln(out, "ok")
			return 0
		}
		reply, err := h.run(f[0], f[1:])
		if err != nil {
			fmt.Fprintf(out, "err %s: %v\n", f[0], err)
			continue
		}
		fmt.Fprintf(out, "ok %s\n", reply)
	}
	return 0
}

func (h *helper) run(cmd string, args []string) (string, error) {
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	num := func(i int) int64 {
		n, _ := strconv.ParseInt(arg(i), 10, 64)
		return n
	}
	switch cmd {
	case "ping":
		return strconv.Itoa(os.Getpid()), nil
	case "touch": // touch N: map N bytes of anonymous memory and write every page
		b, err := unix.Mmap(-1, 0, int(num(0)), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return "", err
		}
		for i := 0; i < len(b); i += os.Getpagesize() {
			b[i] = 1
		}
		h.mem = append(h.mem, b)
		return "", nil
	case "free":
		for _, b := range h.mem {
			_ = unix.Munmap(b)
		}
		h.mem = nil
		return "", nil
	case "read": // read PATH: read the whole file
		n, err := readFile(arg(0))
		return strconv.FormatInt(n, 10), err
	case "dontneed": // dontneed PATH: drop the file's pages from the page cache
		f, err := os.Open(arg(0))
		if err != nil {
			return "", err
		}
		defer f.Close()
		return "", unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	case "sink": // sink [IP]: accept connections (on 127.0.0.1 or IP) and discard what they send
		return listen(arg(0), func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	case "echo": // echo: accept connections and echo what they send
		return listen("", func(c net.Conn) { _, _ = io.Copy(c, c) })
	case "stream": // stream ADDR: connect and send without pause until streamstop
		return h.stream(arg(0))
	case "streamstop":
		if h.streamStop == nil {
			return "", fmt.Errorf("no stream running")
		}
		close(h.streamStop)
		h.streamStop = nil
		return "", nil
	case "burn": // burn PERCENT: use PERCENT of a core (busy, then asleep, every 10ms) until burnstop
		return h.burn(num(0))
	case "burnstop": // burnstop: end burn; answers the microseconds of CPU time the process used
		if h.burnStop == nil {
			return "", fmt.Errorf("no burn running")
		}
		close(h.burnStop)
		<-h.burnDone
		h.burnStop = nil
		return strconv.FormatInt(processCPU().Microseconds(), 10), nil
	case "send": // send ADDR N: connect, send N bytes, close
		return send(arg(0), num(1))
	case "pingpong": // pingpong ADDR SIZE: exchange SIZE-byte messages until pingstop
		return h.pingpong(arg(0), int(num(1)))
	case "pingstop":
		if h.pingStop == nil {
			return "", fmt.Errorf("no pingpong running")
		}
		close(h.pingStop)
		n := <-h.pingDone
		h.pingStop = nil
		return strconv.FormatUint(n, 10), nil
	}
	switch cmd {
	case "rateserve":
		return h.rateServe(args)
	case "drain":
		return h.rateDrain()
	}
	if reply, ok, err := h.requests(cmd, args); ok {
		return reply, err
	}
	return "", fmt.Errorf("unknown command")
}

// burn runs a loop on one thread that is busy for percent of every 10ms
// of wall time and asleep for the rest, until burnstop.
func (h *helper) burn(percent int64) (string, error) {
	if h.burnStop != nil {
		return "", fmt.Errorf("a burn is running")
	}
	if percent <= 0 || percent > 100 {
		return "", fmt.Errorf("percent %d: want 1 to 100", percent)
	}
	stop, done := make(chan struct{}), make(chan time.Duration, 1)
	h.burnStop, h.burnDone = stop, done
	const period = 10 * time.Millisecond
	busy := period * time.Duration(percent) / 100
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start := processCPU()
		x := 0
		for {
			select {
			case <-stop:
				done <- processCPU() - start
				return
			default:
			}
			t0 := time.Now()
			for time.Since(t0) < busy {
				x++
			}
			if busy < period {
				time.Sleep(period - busy)
			}
		}
	}()
	return "", nil
}

// processCPU is the CPU time (user and system) the process used so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func readFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func listen(ip string, serve func(net.Conn)) (string, error) {
	if ip == "" {
		ip = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String(), nil
}

// stream connects to addr and sends in the background until streamstop.
func (h *helper) stream(addr string) (string, error) {
	if h.streamStop != nil {
		return "", fmt.Errorf("a stream is running")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	stop := make(chan struct{})
	h.streamStop = stop
	go func() {
		defer c.Close()
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	return c.LocalAddr().String(), nil
}

func send(addr string, n int64) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	for sent := int64(0); sent < n; {
		m := min(int64(len(buf)), n-sent)
		w, err := c.Write(buf[:m])
		sent += int64(w)
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

func (h *helper) pingpong(addr string, size int) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	h.pingStop, h.pingDone = make(chan struct{}), make(chan uint64, 1)
	stop, done := h.pingStop, h.pingDone
	var rounds atomic.Uint64
	go func() {
		defer c.Close()
		buf := make([]byte, size)
		for {
			select {
			case <-stop:
				done <- rounds.Load()
				return
			default:
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(buf); err != nil {
				<-stop
				done <- rounds.Load()
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				<-stop
				done <- rounds.Load()
				return
			}
			rounds.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	return c.LocalAddr().String(), nil
}
