package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestExchange checks that a workload's exchange with the echo server
// reports a failed write or read and drops the connection, so that the
// next round reconnects.
func TestExchange(t *testing.T) {
	for _, tt := range []struct {
		name string
		peer func(c net.Conn) // the echo server's end
		ok   bool
		log  string
	}{
		{"echoed", func(c net.Conn) { _, _ = io.CopyN(c, c, 512) }, true, ""},
		{"write fails", func(c net.Conn) { c.Close() }, false, "exchange with the echo server"},
		{"read fails", func(c net.Conn) {
			_, _ = io.CopyN(io.Discard, c, 512)
			c.Close()
		}, false, "exchange with the echo server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, server := net.Pipe()
			client := &closeRecorder{Conn: c}
			defer server.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				tt.peer(server)
			}()
			var logged bytes.Buffer
			msg := bytes.Repeat([]byte{7}, 512)
			got := exchange(client, msg, slog.New(slog.NewTextHandler(&logged, nil)))
			<-done
			if (got != nil) != tt.ok {
				t.Errorf("exchange returned %v, want the connection kept: %v", got, tt.ok)
			}
			if tt.ok && !bytes.Equal(msg, bytes.Repeat([]byte{7}, 512)) {
				t.Error("the echo differs from the message")
			}
			if !strings.Contains(logged.String(), tt.log) || (tt.log == "") != (logged.Len() == 0) {
				t.Errorf("logged %q, want %q", logged.String(), tt.log)
			}
			if client.closed == tt.ok {
				t.Errorf("connection closed: %v, want %v", client.closed, !tt.ok)
			}
		})
	}
}

type closeRecorder struct {
	net.Conn
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return c.Conn.Close()
}
