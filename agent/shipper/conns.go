package shipper

import (
	"context"
	"net"
	"sync"
)

// conns dials and remembers the connections it dialed, so that a stopped
// shipper can hang up on its replica at once. Cancelling the stream alone
// leaves the HTTP/2 connection open, and a replica shutting down gracefully
// then waits for it to go.
type conns struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

func (c *conns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := c.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: nc, owner: c}
	c.mu.Lock()
	if c.open == nil {
		c.open = make(map[*trackedConn]struct{})
	}
	c.open[tc] = struct{}{}
	c.mu.Unlock()
	return tc, nil
}

// closeAll closes every connection still open.
func (c *conns) closeAll() {
	c.mu.Lock()
	open := c.open
	c.open = nil
	c.mu.Unlock()
	for tc := range open {
		_ = tc.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	owner *conns
	once  sync.Once
}

func (tc *trackedConn) Close() error {
	tc.once.Do(func() {
		tc.owner.mu.Lock()
		delete(tc.owner.open, tc)
		tc.owner.mu.Unlock()
	})
	return tc.Conn.Close()
}
