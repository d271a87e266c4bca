// Command probecost measures each eBPF program's kernel time per event on
// an otherwise idle machine, one synthetic workload at a time: the warm-cache
// cost, to read next to the loaded-machine numbers of benchagent.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		return
	}
	l, err := cgroupfs.DetectLayout()
	must(err)
	p, err := probe.Load(context.Background(), probe.Config{CgroupV2: l.V2})
	must(err)
	defer p.Close()
	st, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	must(err)
	defer st.Close()

	f, err := os.CreateTemp("/var/tmp", "probecost-")
	must(err)
	defer os.Remove(f.Name())
	_, _ = f.Write(make([]byte, 1<<20))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	// An HTTP server speaking HTTP/1.1 and h2c, for the request programs.
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })}
	go func() { _ = srv.Serve(hl) }()
	defer srv.Close()
	httpGets := func(h2c bool) func() {
		return func() {
			var p http.Protocols
			if h2c {
				p.SetUnencryptedHTTP2(true)
			} else {
				p.SetHTTP1(true)
			}
			tr := &http.Transport{Protocols: &p}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for i := 0; i < 10000; i++ {
				resp, err := c.Get("http://" + hl.Addr().String() + "/")
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}
	work := map[string]func(){
		"http/1.1 keep-alive": httpGets(false),
		"h2c":                 httpGets(true),
		"pread 4K cached": func() {
			b := make([]byte, 4096)
			for i := 0; i < 200000; i++ {
				_, _ = f.ReadAt(b, int64(i%256)*4096)
			}
		},
		"mmap touch munmap": func() {
			for i := 0; i < 2000; i++ {
				m, _ := unix.Mmap(-1, 0, 64<<10, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				for j := 0; j < len(m); j += 4096 {
					m[j] = 1
				}
				_ = unix.Munmap(m)
			}
		},
		"tcp ping-pong": func() {
			c, _ := net.Dial("tcp", ln.Addr().String())
			defer c.Close()
			b := make([]byte, 64)
			for i := 0; i < 20000; i++ {
				_, _ = c.Write(b)
				_, _ = io.ReadFull(c, b)
			}
		},
		"tcp connect close": func() {
			for i := 0; i < 2000; i++ {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err == nil {
					c.Close()
				}
			}
		},
		"fork exit": func() {
			for i := 0; i < 200; i++ {
				_ = exec.Command(os.Args[0], "child").Run()
			}
		},
		"drop and read 1M": func() {
			b := make([]byte, 1<<20)
			for i := 0; i < 300; i++ {
				_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				_, _ = f.ReadAt(b, 0)
			}
		},
	}
	names := make([]string, 0, len(work))
	for n := range work {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		before, _ := p.ProgramStats()
		t := time.Now()
		work[n]()
		after, _ := p.ProgramStats()
		fmt.Printf("%s (%s):\n", n, time.Since(t).Round(time.Millisecond))
		for i := range after {
			runs := after[i].RunCount - before[i].RunCount
			if runs < 100 {
				continue
			}
			fmt.Printf("  %-16s %8d events %6.0f ns/event\n", after[i].Name, runs,
				float64(after[i].RunTime-before[i].RunTime)/float64(runs))
		}
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
