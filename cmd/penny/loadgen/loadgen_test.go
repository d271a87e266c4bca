package loadgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/cmd/penny/loadgen"
	"github.com/pennyhq/penny/kvraft"
)

// TestRunAgainstReplica runs a small load against a real single-member
// replica: every simulated agent's series must land, and a load this small
// must be sustained with every probe followed to the end.
func TestRunAgainstReplica(t *testing.T) {
	s, err := server.Start(context.Background(), server.Config{
		Store: kvraft.Config{ID: 1, DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond,
			InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}},
		SingleMember: true, Listen: "127.0.0.1:0", RequestTimeout: 5 * time.Second, ShutdownGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	base := "http://" + s.Addr.String()

	const agents, containers = 4, 25
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		URLs: []string{base}, Agents: agents, Containers: containers,
		Interval: 200 * time.Millisecond, Warmup: time.Second, Duration: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.FramesSent == 0 || res.SeriesPerSecond <= 0 || res.Probes == 0 {
		t.Fatalf("nothing measured: %+v", *res)
	}
	if !res.Sustained() || res.LostProbes != 0 {
		t.Fatalf("a load of %d agents x %d containers not sustained: %+v", agents, containers, *res)
	}
	if res.FreshP50 <= 0 || res.FreshP50 > res.FreshP99 || res.FreshP99 > res.FreshMax {
		t.Fatalf("freshness percentiles out of order: p50 %v p99 %v max %v", res.FreshP50, res.FreshP99, res.FreshMax)
	}
	if res.LateP50 <= 0 || res.LateP50 > res.LateP99 {
		t.Fatalf("generator lateness out of order: p50 %v p99 %v", res.LateP50, res.LateP99)
	}
	if res.QueuedP50 <= 0 || res.QueuedP50 > res.QueuedP99 || res.QueuedP50 > res.FreshP50 {
		t.Fatalf("freshness from the queue: p50 %v p99 %v, from the sample p50 %v", res.QueuedP50, res.QueuedP99, res.FreshP50)
	}
	var sb strings.Builder
	loadgen.PrintTable(&sb, []*loadgen.Result{res})
	if !strings.Contains(sb.String(), "yes") {
		t.Errorf("table does not say the load was sustained:\n%s", sb.String())
	}

	resp, err := http.Get(base + gateway.ContainersPath + "?consistency=linearizable")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got query.Containers
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]int{}
	for _, c := range got.Containers {
		nodes[c.Node]++
	}
	if len(nodes) != agents {
		t.Fatalf("series of %d nodes stored, want %d: %v", len(nodes), agents, nodes)
	}
	for n, k := range nodes {
		if k < containers {
			t.Errorf("node %s: %d series stored, want at least %d", n, k, containers)
		}
	}
}

// TestRunWithIdentities runs the load against a replica that authenticates
// every caller: each simulated agent streams with its own node's token and
// the probes read as an admin. Every node lands; with each agent given the
// next node's token instead, nothing does.
func TestRunWithIdentities(t *testing.T) {
	const agents, containers = 3, 10
	dir := t.TempDir()
	var csv strings.Builder
	for i := range agents + 1 {
		fmt.Fprintf(&csv, "tok-%d,%s,uid-%d,%q\n", i, loadgen.NodeName(i), i, authn.GroupAgents)
	}
	fmt.Fprintf(&csv, "tok-admin,root,uid-r,%q\n", authn.GroupAdmins)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := authn.NewTokenFile(tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		token func(node string) string
		nodes int
	}{
		{"own node", func(node string) string { var i int; fmt.Sscanf(node, "load-%d", &i); return fmt.Sprintf("tok-%d", i) }, agents},
		{"another node", func(node string) string {
			var i int
			fmt.Sscanf(node, "load-%d", &i)
			return fmt.Sprintf("tok-%d", i+1)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := server.Start(context.Background(), server.Config{
				Store: kvraft.Config{ID: 1, DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond,
					InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}},
				SingleMember: true, Listen: "127.0.0.1:0", RequestTimeout: 5 * time.Second, ShutdownGrace: time.Second,
				Access: access.Config{Authenticator: tf, Authorizer: authz.Policy{}},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Stop)
			base := "http://" + s.Addr.String()
			res, err := loadgen.Run(t.Context(), loadgen.Config{
				URLs: []string{base}, Agents: agents, Containers: containers,
				Interval: 200 * time.Millisecond, Warmup: time.Second, Duration: time.Second,
				AgentToken: tc.token, ProbeToken: "tok-admin",
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.nodes > 0 && (!res.Sustained() || res.LostProbes != 0 || res.Probes == 0) {
				t.Fatalf("not sustained with identities: %+v", *res)
			}
			req, _ := http.NewRequest(http.MethodGet, base+gateway.ContainersPath+"?consistency=linearizable", nil)
			req.Header.Set("Authorization", "Bearer tok-admin")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got query.Containers
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			nodes := map[string]bool{}
			for _, c := range got.Containers {
				nodes[c.Node] = true
			}
			if len(nodes) != tc.nodes {
				t.Errorf("series of %d nodes stored, want %d: %v", len(nodes), tc.nodes, nodes)
			}
		})
	}
}
