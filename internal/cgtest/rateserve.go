package cgtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The scaling workload: an HTTP server whose pod slows down past a known
// throughput, as a real service does once its workers, connections or
// downstream calls are all busy.
//
//	rateserve C BASE_MS CPU_US
//	                 serve HTTP/1.1 on 127.0.0.1 and answer the address;
//	                 each request costs CPU_US microseconds of CPU time
//	                 and is answered after BASE_MS milliseconds while the
//	                 server has received at most C requests in the last
//	                 second, after BASE_MS × (rate/C)^4 past it (RateDelay).
//	drain            stop accepting, finish the requests under way (at
//	                 most 5 s) and close the server.

// RateDelay is the service time of a rateserve server that received rate
// requests in the last second, for a throughput of c requests per second
// and a base service time: base up to c, then growing with the fourth
// power of the overload (1.5 times c takes about 5 times base), at most
// 5 s.
func RateDelay(rate, c float64, base time.Duration) time.Duration {
	if rate <= c || c <= 0 {
		return base
	}
	d := time.Duration(float64(base) * math.Pow(rate/c, 4))
	return min(d, 5*time.Second)
}

// rateServer is one rateserve server.
type rateServer struct {
	srv      *http.Server
	capacity float64
	base     time.Duration
	cpu      time.Duration

	mu       sync.Mutex
	arrivals []time.Time // of the last second, oldest first
}

func (h *helper) rateServe(args []string) (string, error) {
	if h.rate != nil {
		return "", errors.New("a rateserve server is running")
	}
	if len(args) != 3 {
		return "", fmt.Errorf("rateserve C BASE_MS CPU_US: got %d arguments", len(args))
	}
	var v [3]int64
	for i, a := range args {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return "", fmt.Errorf("rateserve: argument %q: want a number of at least 0", a)
		}
		v[i] = n
	}
	s := &rateServer{capacity: float64(v[0]), base: time.Duration(v[1]) * time.Millisecond, cpu: time.Duration(v[2]) * time.Microsecond}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	var p http.Protocols
	p.SetHTTP1(true)
	s.srv = &http.Server{Protocols: &p, Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = s.srv.Serve(l) }()
	h.rate = s
	return l.Addr().String(), nil
}

func (h *helper) rateDrain() (string, error) {
	if h.rate == nil {
		return "", errors.New("no rateserve server is running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.rate.srv.Shutdown(ctx)
	h.rate = nil
	return "", err
}

// ServeHTTP answers one request after its service time.
func (s *rateServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	start := time.Now()
	s.mu.Lock()
	cut := start.Add(-time.Second)
	i := 0
	for i < len(s.arrivals) && s.arrivals[i].Before(cut) {
		i++
	}
	s.arrivals = append(s.arrivals[i:], start)
	rate := float64(len(s.arrivals))
	s.mu.Unlock()
	spin(s.cpu)
	time.Sleep(RateDelay(rate, s.capacity, s.base) - time.Since(start))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

// spin keeps its thread busy for d of CPU time.
func spin(d time.Duration) {
	if d <= 0 {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	begin, ok := threadCPU()
	if !ok {
		return
	}
	x := uint64(1)
	for {
		for range 1000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if now, ok := threadCPU(); !ok || now-begin >= d {
			break
		}
	}
	spun.Store(x)
}

// spun keeps the result of spin's arithmetic, so that it is not optimized
// away.
var spun atomic.Uint64

// threadCPU is the CPU time of the calling thread.
func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
