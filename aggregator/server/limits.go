package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Default connection and request limits of the API listener.
const (
	DefaultMaxConns          = 1024
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultH2ReceiveBuffer   = 256 << 10
)

// APILimits bound what clients of the API listener may hold: connections,
// and the time to send headers and bodies. The ingest sets its own read
// deadlines, frame by frame, on its long-lived streams (ingest.Config).
type APILimits struct {
	// MaxConns caps the open connections (DefaultMaxConns, 1024); past it
	// the listener stops accepting until one closes, and
	// penny_api_connection_waits_total counts the waits.
	MaxConns int
	// ReadHeaderTimeout bounds the time to send a request's headers (5s).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds the time to send a request's body from the moment
	// its handler starts (30s): a 1.5 MiB body must arrive at 50 KiB/s. A
	// body still arriving then is cut, the request fails and
	// penny_api_body_timeouts_total counts it.
	BodyTimeout time.Duration
	// IdleTimeout bounds a kept-alive connection's wait for its next
	// request (2m).
	IdleTimeout time.Duration
	// H2ReceiveBuffer bounds the request bytes HTTP/2 buffers per
	// connection and per stream before a handler reads them
	// (DefaultH2ReceiveBuffer, 256 KiB; at least 64 KiB): with MaxConns, it
	// bounds what clients can park in the server's memory (256 MiB by
	// default) past the handlers' own limits.
	H2ReceiveBuffer int
}

// Complete fills in the defaults.
func (l *APILimits) Complete() {
	if l.MaxConns == 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.H2ReceiveBuffer == 0 {
		l.H2ReceiveBuffer = DefaultH2ReceiveBuffer
	}
}

// Validate checks completed limits.
func (l *APILimits) Validate() error {
	if l.MaxConns < 1 {
		return fmt.Errorf("server: max connections %d must be positive", l.MaxConns)
	}
	if l.ReadHeaderTimeout <= 0 || l.BodyTimeout <= 0 || l.IdleTimeout <= 0 {
		return errors.New("server: header, body and idle timeouts must be positive")
	}
	if l.H2ReceiveBuffer < 64<<10 || l.H2ReceiveBuffer > 64<<20 {
		return fmt.Errorf("server: HTTP/2 receive buffer %d not in [64 KiB, 64 MiB]", l.H2ReceiveBuffer)
	}
	return nil
}

// limitMetrics count what the limits did.
type limitMetrics struct {
	conns        prometheus.Gauge
	connWaits    prometheus.Counter
	bodyTimeouts prometheus.Counter
}

func newLimitMetrics(reg prometheus.Registerer) *limitMetrics {
	m := &limitMetrics{
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_api_connections",
			Help: "Connections open on the API listener."}),
		connWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_api_connection_waits_total",
			Help: "Times the API listener reached its connection cap and waited for a connection to close before accepting."}),
		bodyTimeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_api_body_timeouts_total",
			Help: "Requests whose body did not arrive within the body timeout, cut."}),
	}
	if reg != nil {
		reg.MustRegister(m.conns, m.connWaits, m.bodyTimeouts)
	}
	return m
}

// limitListener accepts at most n connections at once: past them, Accept
// waits for one to close (golang.org/x/net/netutil.LimitListener's
// behaviour, counted).
type limitListener struct {
	net.Listener
	slots chan struct{}
	m     *limitMetrics
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(ln net.Listener, n int, m *limitMetrics) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), m: m, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.m.connWaits.Inc()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.m.conns.Inc()
	return &limitConn{Conn: c, release: func() { <-l.slots; l.m.conns.Dec() }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// bodyDeadline gives every request's body BodyTimeout to arrive, from the
// moment its handler starts: a read deadline on the request (the
// connection's in HTTP/1.1, the stream's in HTTP/2). A handler that streams
// (the ingest) sets its own deadlines over it.
func bodyDeadline(h http.Handler, timeout time.Duration, m *limitMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			// A writer that cannot take deadlines (a test recorder) reads
			// without one.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
			r.Body = &timedBody{ReadCloser: r.Body, m: m}
		}
		h.ServeHTTP(w, r)
	})
}

// timedBody counts the first read that hit the deadline.
type timedBody struct {
	io.ReadCloser
	m       *limitMetrics
	counted bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.counted && errors.Is(err, os.ErrDeadlineExceeded) {
		b.counted = true
		b.m.bodyTimeouts.Inc()
	}
	return n, err
}
