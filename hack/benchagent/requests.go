package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The request load (-requests-rate): an HTTP/1.1 server in a cgroup of its
// own, and a client in another that sends it requests at a fixed rate over
// keep-alive connections, for the request programs and the agent's share
// of them.

// loadConns is how many connections the request load spreads over.
const loadConns = 16

// httpServer serves "ok" on 127.0.0.1 and prints its address.
func httpServer() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr())
	srv := &http.Server{ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })}
	return srv.Serve(l)
}

// httpLoad sends rate requests a second to addr over loadConns
// connections until it is killed, and prints how many it sent each second
// on stdout.
func httpLoad(addr string, rate int) error {
	if rate <= 0 {
		return fmt.Errorf("request rate %d: want a positive rate", rate)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: loadConns}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, loadConns)
	every := time.Duration(float64(time.Second) * loadConns / float64(rate))
	for range loadConns {
		wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for range t.C {
				resp, err := c.Get("http://" + addr + "/")
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		})
	}
	go func() {
		for range time.Tick(time.Second) {
			fmt.Println(sent.Swap(0))
		}
	}()
	wg.Wait()
	return <-errs
}

// requestLoad starts the server and the client of the request load, and
// returns the client, whose output counts the requests it sent.
func requestLoad(start func(path, role string) (*proc, error), root string, rate int) ([]*proc, *requestCounter, error) {
	server, err := start(root+"/http-server", "httpserver")
	if err != nil {
		return nil, nil, err
	}
	addr, err := readLine(server.out)
	if err != nil {
		return []*proc{server}, nil, fmt.Errorf("http server: %w", err)
	}
	client, err := start(root+"/http-client", "httpload "+addr+" "+strconv.Itoa(rate))
	if err != nil {
		return []*proc{server}, nil, err
	}
	rc := &requestCounter{}
	go rc.count(client.out)
	return []*proc{server, client}, rc, nil
}

func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		if _, err := r.Read(buf); err != nil {
			return "", err
		}
		if buf[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(buf[0])
	}
}

// requestCounter adds up the requests the load client reports.
type requestCounter struct {
	n atomic.Int64
}

func (c *requestCounter) count(r io.Reader) {
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64); err == nil {
			c.n.Add(n)
		}
	}
}
