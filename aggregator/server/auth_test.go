package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/wire"
)

// tokens of the replicas startAuth starts.
const (
	tokenAgentA = "agent-a-token"
	tokenAgentB = "agent-b-token"
	tokenAdmin  = "admin-token"
	tokenShop   = "shop-token"
)

// startAuth runs a single-member replica with a token file (two agents,
// an admin, a reader of namespace shop) and a policy file.
func startAuth(t *testing.T, tune func(*server.Config)) *server.Server {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	csv := fmt.Sprintf("%s,node-a,uid-a,%q\n%s,node-b,uid-b,%q\n%s,root,uid-r,%q\n%s,shopper,uid-s\n",
		tokenAgentA, authn.GroupAgents, tokenAgentB, authn.GroupAgents, tokenAdmin, authn.GroupAdmins, tokenShop)
	if err := os.WriteFile(tokens, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := authn.NewTokenFile(tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := authz.ParsePolicy([]byte("rules:\n- users: [shopper]\n  namespaces: [shop]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(filepath.Join(dir, "data"), "127.0.0.1:0")
	cfg.Access = access.Config{Authenticator: tf, Authorizer: authz.Policy{File: policy}}
	if tune != nil {
		tune(&cfg)
	}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// podSnapshot is a sample of one container of pod ns/name at rss bytes.
func podSnapshot(at time.Time, ns, name string, rss int64) *wire.Snapshot {
	meta := podmeta.Encode(&podmeta.Pod{UID: "uid-" + name, Namespace: ns, Name: name}, &podmeta.Container{Name: "app"})
	return &wire.Snapshot{Time: at, Interval: time.Second, Series: []wire.SeriesState{{Path: "/kubepods/" + name, ID: 1,
		Meta: meta, Values: wire.Values{Processes: 1, RSSBytes: rss}}}}
}

// shipAs streams samples of node as the agent whose token is token; it
// returns the shipper's registry.
func shipAs(t *testing.T, base, token, node string, snaps ...*wire.Snapshot) *prometheus.Registry {
	t.Helper()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: node})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sh, err := shipper.New(shipper.Config{URLs: []string{base}, Registerer: reg,
		Token:      func() (string, error) { return token, nil },
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, enc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go sh.Run(ctx)
	for _, s := range snaps {
		if err := sh.Submit(s); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// getAs reads path with token (none when empty) and decodes a 200 answer
// into v; it returns the status and the body.
func getAs(t *testing.T, base, token, path string, v any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h2c().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, string(b)
}

// metric returns the value of a sample of the replica's /metrics, a line
// that starts with prefix (0 without one).
func metric(t *testing.T, base, prefix string) float64 {
	t.Helper()
	_, body := getAs(t, base, "", "/metrics", nil)
	for l := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// TestForgedFrameForAnotherNodeRefused is the first attack: an
// agent authenticated as node-a posts frames for node-b with a pod at
// 64 GiB RSS. The frame is refused and counted, and /v1/pods does not
// change; node-a's own frames are stored.
func TestForgedFrameForAnotherNodeRefused(t *testing.T) {
	s := startAuth(t, nil)
	base := "http://" + s.Addr.String()
	t0 := time.Now().Truncate(time.Second)

	forged := shipAs(t, base, tokenAgentA, "node-b", podSnapshot(t0, "shop", "victim", 64<<30))
	waitFor(t, "the forged frame refused", func() bool {
		return metric(t, base, `penny_ingest_frames_rejected_total{reason="node_mismatch"}`) >= 1
	})
	own := shipAs(t, base, tokenAgentA, "node-a", podSnapshot(t0, "shop", "web", 100<<20))
	waitFor(t, "node-a's own frame acknowledged", func() bool { return testutil.ToFloat64(acked(own)) == 1 })
	if n := testutil.ToFloat64(acked(forged)); n != 0 {
		t.Fatalf("%v forged frames acknowledged", n)
	}

	var pods query.Pods
	if code, body := getAs(t, base, tokenAdmin, "/v1/pods?consistency=linearizable", &pods); code != http.StatusOK {
		t.Fatalf("GET /v1/pods as admin: %d %s", code, body)
	}
	if len(pods.Pods) != 1 || pods.Pods[0].Name != "web" || pods.Pods[0].Node != "node-a" {
		t.Fatalf("pods after a forged frame: %+v, want only node-a's web", pods.Pods)
	}
}

// TestAccessByIdentity checks who reads and writes what on a replica with
// a token file and a policy: the attacks of the third item, and
// the 401 and 403 JSON errors.
func TestAccessByIdentity(t *testing.T) {
	s := startAuth(t, nil)
	base := "http://" + s.Addr.String()
	own := shipAs(t, base, tokenAgentA, "node-a", podSnapshot(time.Now().Truncate(time.Second), "shop", "web", 100<<20))
	waitFor(t, "node-a's frame acknowledged", func() bool { return testutil.ToFloat64(acked(own)) == 1 })

	for _, tc := range []struct {
		name, token, path string
		status            int
	}{
		{"health without a token", "", "/v1/health", http.StatusOK},
		{"metrics without a token", "", "/metrics", http.StatusOK},
		{"pods without a token", "", "/v1/pods", http.StatusUnauthorized},
		{"containers without a token", "", "/v1/containers", http.StatusUnauthorized},
		{"pprof without a token", "", "/debug/pprof/", http.StatusUnauthorized},
		{"a wrong token", "nope", "/v1/pods?namespace=shop", http.StatusUnauthorized},
		{"reader, its namespace", tokenShop, "/v1/pods?namespace=shop", http.StatusOK},
		{"reader, its namespace's totals", tokenShop, "/v1/namespaces?namespace=shop", http.StatusOK},
		{"reader, another namespace", tokenShop, "/v1/pods?namespace=kube-system", http.StatusForbidden},
		{"reader, every namespace", tokenShop, "/v1/pods", http.StatusForbidden},
		{"reader, two namespaces", tokenShop, "/v1/pods?namespace=shop&namespace=kube-system", http.StatusForbidden},
		{"reader, containers", tokenShop, "/v1/containers", http.StatusForbidden},
		{"reader, nodes", tokenShop, "/v1/nodes", http.StatusForbidden},
		{"reader, allocation of the cluster", tokenShop, "/v1/allocation?window=1h", http.StatusForbidden},
		{"reader, allocation of its namespace", tokenShop, `/v1/allocation?window=1h&idle=false&filter=namespace:"shop"`, http.StatusOK},
		{"reader, allocation of its namespace with idle", tokenShop, `/v1/allocation?window=1h&filter=namespace:"shop"`, http.StatusForbidden},
		{"reader, the prices", tokenShop, "/v1/pricing", http.StatusOK},
		{"reader, the KV API", tokenShop, "/v1/kv/x", http.StatusForbidden},
		{"reader, membership", tokenShop, "/v1/cluster", http.StatusForbidden},
		{"reader, a path trick", tokenShop, "/v1/pods/../kv/x", http.StatusForbidden},
		{"agent, pods", tokenAgentA, "/v1/pods?namespace=shop", http.StatusForbidden},
		{"agent, the KV API", tokenAgentA, "/v1/kv", http.StatusForbidden},
		{"admin, pods", tokenAdmin, "/v1/pods", http.StatusOK},
		{"admin, the KV API", tokenAdmin, "/v1/kv?prefix=x", http.StatusOK},
		{"admin, membership", tokenAdmin, "/v1/cluster", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := getAs(t, base, tc.token, tc.path, nil)
			if code != tc.status {
				t.Fatalf("GET %s: %d %s, want %d", tc.path, code, body, tc.status)
			}
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("refusal body %q is not a JSON error", body)
				}
			}
		})
	}
	// Writes: an agent may not write the store, nor may a reader.
	for _, tok := range []string{"", tokenAgentA, tokenShop} {
		req, _ := http.NewRequest(http.MethodPut, base+"/v1/kv/forged", strings.NewReader("v"))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := h2c().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("PUT /v1/kv/forged with token %q: %s", tok, resp.Status)
		}
	}
	if code, body := getAs(t, base, tokenAdmin, "/v1/kv/forged?consistency=linearizable", nil); code != http.StatusNotFound {
		t.Errorf("refused writes changed the store: GET /v1/kv/forged: %d %s", code, body)
	}
	if n := metric(t, base, `penny_authz_denied_total{resource="pods"}`); n < 3 {
		t.Errorf("pods denials counted %v, want at least 3", n)
	}
	if n := metric(t, base, `penny_auth_denied_total{reason="no_credentials"}`); n < 3 {
		t.Errorf("requests without credentials counted %v, want at least 3", n)
	}
}
