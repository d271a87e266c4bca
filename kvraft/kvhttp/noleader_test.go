package kvhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/faultnet"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// TestNoLeaderOverHTTP serves one member of a three-member cluster whose
// peers never start, so it never knows a leader: the API answers 503 with
// Retry-After, and the client reports kvraft.ErrNoLeader.
func TestNoLeaderOverHTTP(t *testing.T) {
	var members []kvraft.Member
	for id := uint64(1); id <= 3; id++ {
		members = append(members, kvraft.Member{ID: id, PeerURL: fmt.Sprintf("http://node%d:1", id)})
	}
	n, err := kvraft.Start(context.Background(), kvraft.Config{
		ID: 1, DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond, InitialCluster: members,
		NewTransport:   faultnet.New(1).Factory(1),
		RequestTimeout: 300 * time.Millisecond, ReadIndexTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	h, err := kvhttp.NewHandler(n, kvhttp.Config{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := kvhttp.NewClient(srv.URL)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"put", func() error { _, err := c.Put(ctx, []byte("k"), []byte("v")); return err }},
		{"batch", func() error {
			_, err := c.Batch(ctx, []kvraft.Op{{Type: kvraft.OpDelete, Key: []byte("k")}})
			return err
		}},
		{"txn", func() error {
			_, err := c.Txn(ctx, kvraft.Txn{Then: []kvraft.Op{{Type: kvraft.OpDelete, Key: []byte("k")}}})
			return err
		}},
		{"linearizable get", func() error { _, err := c.Get(ctx, []byte("k"), kvraft.ReadOptions{}); return err }},
		{"linearizable range", func() error { _, err := c.Range(ctx, []byte("k"), 0, kvraft.ReadOptions{}); return err }},
		{"add member", func() error {
			_, err := c.AddMember(ctx, kvraft.Member{ID: 4, PeerURL: "http://node4:1"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, kvraft.ErrNoLeader) {
				t.Fatalf("error %v, want kvraft.ErrNoLeader", err)
			}
		})
	}
	// The raw answers: 503 with Retry-After, for a write and for the health
	// check alike.
	for _, tc := range []struct{ method, path string }{{http.MethodPut, "/v1/kv/k"}, {http.MethodGet, "/v1/health"}} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("v"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", kvhttp.MediaValue)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %s with Retry-After %q, want 503 with Retry-After", tc.method, tc.path, resp.Status, resp.Header.Get("Retry-After"))
		}
	}
}
