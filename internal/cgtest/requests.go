package cgtest

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The request workloads: servers with a known service time and clients
// that send a known number of requests, each run by a helper so that its
// sockets belong to the helper's cgroup.
//
//	reqserve KIND MS [B [CERT KEY]]
//	                         serve KIND (http, https, grpc, tcp) on
//	                         127.0.0.1, each request answered after MS
//	                         milliseconds (http, https and tcp: with B
//	                         bytes, 0 for ReqMessage); answers the
//	                         address. http speaks HTTP/1.1 and HTTP/2
//	                         cleartext (h2c, prior knowledge); https
//	                         HTTP/1.1 over TLS with the certificate and key
//	                         in files CERT and KEY.
//	reqload KIND ADDR N C [B [CA]]
//	                         send N requests of KIND (h1, h2c, https, grpc,
//	                         tcp, pipeline) to ADDR over C connections, each
//	                         connection waiting for a response (tcp: of B
//	                         bytes) before its next request (pipeline:
//	                         sending up to 4 ahead; h2c and grpc: C
//	                         concurrent streams, on as many connections as
//	                         the client opens, usually one; https: trusting
//	                         the CA certificate in file CA); answers how many
//	                         were answered and the mean, median and 99th
//	                         percentile of their latency as the client saw
//	                         it, in microseconds (ParseLoad reads it).
func (h *helper) requests(cmd string, args []string) (string, bool, error) {
	num := func(i int) int {
		if i >= len(args) {
			return 0
		}
		n, _ := strconv.Atoi(args[i])
		return n
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch cmd {
	case "reqserve":
		addr, err := reqServe(arg(0), time.Duration(num(1))*time.Millisecond, cmp.Or(num(2), ReqMessage), arg(3), arg(4))
		return addr, true, err
	case "reqload":
		lat, err := reqLoad(arg(0), arg(1), num(2), num(3), cmp.Or(num(4), ReqMessage), arg(5))
		return loadReply(lat), true, err
	}
	return "", false, nil
}

// Load is what a reqload command answers.
type Load struct {
	// Answered is how many requests were answered.
	Answered int
	// Mean, P50 and P99 are the latency of the answered requests as the
	// client measured it: from before it sent a request to when it read
	// the whole response.
	Mean, P50, P99 time.Duration
}

// ParseLoad reads a reqload command's answer.
func ParseLoad(reply string) (Load, error) {
	f := strings.Fields(reply)
	if len(f) != 4 {
		return Load{}, fmt.Errorf("reqload answered %q, want 4 numbers", reply)
	}
	var v [4]int64
	for i := range f {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return Load{}, fmt.Errorf("reqload answered %q: %w", reply, err)
		}
		v[i] = n
	}
	us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
	return Load{Answered: int(v[0]), Mean: us(v[1]), P50: us(v[2]), P99: us(v[3])}, nil
}

// loadReply is the answer of reqload for the latencies of the answered
// requests.
func loadReply(lat []time.Duration) string {
	if len(lat) == 0 {
		return "0 0 0 0"
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return fmt.Sprintf("%d %d %d %d", len(lat), (sum / time.Duration(len(lat))).Microseconds(),
		q(0.5).Microseconds(), q(0.99).Microseconds())
}

// ReqMessage is the size of a request of the tcp kind, and the default
// size of a response.
const ReqMessage = 64

func reqServe(kind string, delay time.Duration, size int, certFile, keyFile string) (string, error) {
	body := strings.Repeat("x", size)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		_, _ = io.WriteString(w, body)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	switch kind {
	case "http":
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv := &http.Server{Protocols: &p, ReadHeaderTimeout: time.Minute, Handler: slow}
		go func() { _ = srv.Serve(l) }()
	case "https":
		var p http.Protocols
		p.SetHTTP1(true)
		srv := &http.Server{Protocols: &p, ReadHeaderTimeout: time.Minute, Handler: slow}
		go func() { _ = srv.ServeTLS(l, certFile, keyFile) }()
	case "grpc":
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, &slowHealth{delay: delay})
		go func() { _ = srv.Serve(l) }()
	case "tcp":
		go acceptLoop(l, func(c net.Conn) {
			buf := make([]byte, ReqMessage)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				time.Sleep(delay)
				if _, err := io.WriteString(c, body); err != nil {
					return
				}
			}
		})
	default:
		l.Close()
		return "", fmt.Errorf("unknown server kind %q", kind)
	}
	return l.Addr().String(), nil
}

func acceptLoop(l net.Listener, serve func(net.Conn)) {
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
}

// slowHealth answers health checks after its delay.
type slowHealth struct {
	healthpb.UnimplementedHealthServer
	delay time.Duration
}

func (s *slowHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	time.Sleep(s.delay)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// reqLoad sends n requests over conns connections (or concurrent streams
// of one HTTP/2 connection) and returns the latencies of those answered.
func reqLoad(kind, addr string, n, conns, size int, caFile string) ([]time.Duration, error) {
	if n <= 0 || conns <= 0 {
		return nil, fmt.Errorf("want positive counts, got %d requests over %d connections", n, conns)
	}
	var one func() (func() error, func(), error) // a connection: its request and its closer
	switch kind {
	case "h1", "h2c", "https":
		var p http.Protocols
		if kind == "h2c" {
			p.SetUnencryptedHTTP2(true)
		} else {
			p.SetHTTP1(true)
		}
		// MaxConnsPerHost: without it a request that finds no idle
		// connection dials one and, if another frees up first, leaves
		// the new one idle: a busy client opens more than conns.
		tr := &http.Transport{Protocols: &p, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
		scheme := "http://"
		if kind == "https" {
			pool, err := caPool(caFile)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
			scheme = "https://"
		}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		one = func() (func() error, func(), error) {
			return func() error {
				resp, err := c.Get(scheme + addr + "/")
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %s", resp.Status)
				}
				return nil
			}, func() {}, nil
		}
	case "grpc":
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		defer cc.Close()
		client := healthpb.NewHealthClient(cc)
		one = func() (func() error, func(), error) {
			return func() error {
				_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
				return err
			}, func() {}, nil
		}
	case "tcp":
		one = func() (func() error, func(), error) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, nil, err
			}
			req, resp := make([]byte, ReqMessage), make([]byte, size)
			return func() error {
				if _, err := c.Write(req); err != nil {
					return err
				}
				_, err := io.ReadFull(c, resp)
				return err
			}, func() { c.Close() }, nil
		}
	case "pipeline":
		return pipeline(addr, n, conns)
	default:
		return nil, fmt.Errorf("unknown load kind %q", kind)
	}
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	errs := make(chan error, conns)
	for w := range conns {
		count := n / conns
		if w < n%conns {
			count++
		}
		req, closeConn, err := one()
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			defer closeConn()
			for range count {
				start := time.Now()
				if err := req(); err != nil {
					errs <- err
					return
				}
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	return lat, <-errs
}

// caPool reads the CA certificate in file name.
func caPool(name string) (*x509.CertPool, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", name)
	}
	return pool, nil
}

// pipelineDepth is how many HTTP/1.1 requests a pipelining connection
// sends ahead of the responses.
const pipelineDepth = 4

// pipeline sends n HTTP/1.1 requests over conns connections, pipelining
// them pipelineDepth deep: each request in its own write, a millisecond
// after the one before, so that each starts a TCP segment.
func pipeline(addr string, n, conns int) ([]time.Duration, error) {
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	errs := make(chan error, conns)
	for w := range conns {
		count := n / conns
		if w < n%conns {
			count++
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for sent := 0; sent < count; {
				batch := min(pipelineDepth, count-sent)
				starts := make([]time.Time, 0, batch)
				for range batch {
					starts = append(starts, time.Now())
					if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: penny\r\n\r\n"); err != nil {
						errs <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
				for _, start := range starts {
					if err := readResponse(r); err != nil {
						errs <- err
						return
					}
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
				sent += batch
			}
		})
	}
	wg.Wait()
	close(errs)
	return lat, <-errs
}

// readResponse reads one response with a Content-Length.
func readResponse(r *bufio.Reader) error {
	length := -1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			if length, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err := r.Discard(length)
	return err
}
