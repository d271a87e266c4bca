package kvhttp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// TestRangeAnswerOverTheRequestLimit reads a range whose answer is larger
// than the largest request body: the client bounds answers on their own.
func TestRangeAnswerOverTheRequestLimit(t *testing.T) {
	n, srv := startServer(t)
	value := make([]byte, command.MaxValueSize)
	// Base64 makes each value 4/3 of its size in the answer.
	count := int(kvhttp.MaxBatchBody/(int64(len(value))*4/3)) + 1
	for i := range count {
		if _, err := n.Put(context.Background(), fmt.Appendf(nil, "big/%02d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	c := kvhttp.NewClient(srv.URL)
	rr, err := c.Range(context.Background(), []byte("big/"), 0, kvraft.ReadOptions{})
	if err != nil || len(rr.Items) != count {
		t.Fatalf("range of %d values of %d bytes: %d items, %v", count, len(value), len(rr.Items), err)
	}
}

// TestRangeAnswerOverTheClientLimit reads a range larger than the client's
// bound: a clear error wrapping kvraft.ErrTooLarge that says what to do.
func TestRangeAnswerOverTheClientLimit(t *testing.T) {
	n, srv := startServer(t)
	for i := range 4 {
		if _, err := n.Put(context.Background(), fmt.Appendf(nil, "k/%d", i), make([]byte, 1<<10)); err != nil {
			t.Fatal(err)
		}
	}
	c := kvhttp.NewClient(srv.URL)
	c.MaxResponseBody = 4 << 10 // the four values take 4/3 of that in base64
	_, err := c.Range(context.Background(), []byte("k/"), 0, kvraft.ReadOptions{})
	if !errors.Is(err, kvraft.ErrTooLarge) {
		t.Fatalf("range over the client's limit: %v, want kvraft.ErrTooLarge", err)
	}
	for _, want := range []string{"4096 bytes", "MaxResponseBody", "prefix", "limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// What fits still reads.
	if rr, err := c.Range(context.Background(), []byte("k/"), 2, kvraft.ReadOptions{}); err != nil || len(rr.Items) != 2 || !rr.More {
		t.Fatalf("a narrower range: %+v, %v", rr, err)
	}
}
