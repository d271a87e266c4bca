// Command benchauth measures what the request path's modules cost
// (`make bench-auth`; docs/security.md has the table): two single-member
// replicas in this process hold the same pods, one with every module off,
// the other with every module on (authentication by TokenReview, its
// answers cached; authorization by SubjectAccessReview, cached; a rate
// limit per identity high enough never to refuse; the audit log). 64
// clients read GET /v1/pods?namespace=NS from each in turn, each client as
// its own ServiceAccount allowed its namespace. Each client alternates
// between the two replicas, request by request, so that both see the same
// load on a machine shared with other work; the table shows p50, p99 and
// throughput of each, and what the modules add.
//
// The Kubernetes API is a stand-in (client-go's fake clientset) answering
// at once: with the answers cached, only the first request of each client
// asks it. It prints a table; it is a benchmark, not a test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

const node = "bench-node"

func main() {
	clients := flag.Int("clients", 64, "concurrent readers")
	duration := flag.Duration("duration", 2*time.Second, "measured time of each run")
	rounds := flag.Int("rounds", 5, "runs; the table shows the median of each measure")
	namespaces := flag.Int("namespaces", 16, "namespaces, each with -pods-per-namespace pods")
	podsPerNS := flag.Int("pods-per-namespace", 8, "pods per namespace")
	flag.Parse()
	if err := run(*clients, *duration, *rounds, *namespaces, *podsPerNS); err != nil {
		fmt.Fprintln(os.Stderr, "benchauth:", err)
		os.Exit(1)
	}
}

func run(clients int, duration time.Duration, rounds, namespaces, podsPerNS int) error {
	dir, err := os.MkdirTemp("", "benchauth")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kube := fakeKube(namespaces)
	off, err := start(filepath.Join(dir, "off"), access.Config{})
	if err != nil {
		return err
	}
	defer off.Stop()
	tr, err := authn.NewTokenReview(authn.TokenReviewConfig{Client: kube.AuthenticationV1().TokenReviews(),
		AgentServiceAccounts: []string{"penny/penny-agent"}})
	if err != nil {
		return err
	}
	wh, err := authz.NewWebhook(authz.WebhookConfig{Client: kube.AuthorizationV1().SubjectAccessReviews()})
	if err != nil {
		return err
	}
	on, err := start(filepath.Join(dir, "on"), access.Config{Authenticator: tr, Authorizer: wh,
		RateLimit: access.RateLimitConfig{QPS: 1e6, Burst: 1e6}, AuditLogPath: filepath.Join(dir, "audit.log")})
	if err != nil {
		return err
	}
	defer on.Stop()
	for _, s := range []*server.Server{off, on} {
		if err := load(s, namespaces, podsPerNS); err != nil {
			return err
		}
	}
	results := map[bool][]result{}
	for range rounds {
		off, on, err := measure(off, on, clients, namespaces, duration)
		if err != nil {
			return err
		}
		results[false], results[true] = append(results[false], off), append(results[true], on)
	}
	fmt.Printf("GET /v1/pods?namespace=NS, %d clients each alternating between the two replicas, %d pods in %d namespaces,\n"+
		"%d runs of %s (medians); reads/s is what the clients would read of that replica alone (clients / mean latency)\n\n",
		clients, namespaces*podsPerNS, namespaces, rounds, duration)
	fmt.Printf("%-44s %10s %10s %12s\n", "modules", "p50", "p99", "reads/s")
	a, b := median(results[false]), median(results[true])
	fmt.Printf("%-44s %10s %10s %12.0f\n", "all off", us(a.p50), us(a.p99), a.rate)
	fmt.Printf("%-44s %10s %10s %12.0f\n", "all on (TokenReview + SAR cached, rate, audit)", us(b.p50), us(b.p99), b.rate)
	fmt.Printf("%-44s %10s %10s %11.1f%%\n", "added", us(b.p50-a.p50), us(b.p99-a.p99), 100*(b.rate-a.rate)/a.rate)
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// fakeKube answers TokenReviews (reader-N is ServiceAccount ns-N/reader;
// agent is the agent ServiceAccount on the bench node) and
// SubjectAccessReviews (a reader may list pods in its namespace).
func fakeKube(namespaces int) *fake.Clientset {
	cs := fake.NewClientset()
	users := map[string]authnv1.UserInfo{"agent": {Username: serviceaccount.MakeUsername("penny", "penny-agent"),
		Extra: map[string]authnv1.ExtraValue{serviceaccount.PodNameKey: {"agent"}, serviceaccount.NodeNameKey: {node}}}}
	for i := range namespaces {
		users[fmt.Sprintf("reader-%d", i)] = authnv1.UserInfo{Username: serviceaccount.MakeUsername(ns(i), "reader"),
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns(i), "system:authenticated"}}
	}
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		u, ok := users[tr.Spec.Token]
		tr.Status = authnv1.TokenReviewStatus{Authenticated: ok, User: u}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = ra != nil && ra.Resource == authz.Pods && sar.Spec.User == serviceaccount.MakeUsername(ra.Namespace, "reader")
		return true, sar, nil
	})
	return cs
}

func ns(i int) string { return fmt.Sprintf("ns-%d", i) }

func start(dir string, ac access.Config) (*server.Server, error) {
	return server.Start(context.Background(), server.Config{
		Store:        kvraft.Config{ID: 1, DataDir: dir, InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}},
		SingleMember: true, Listen: "127.0.0.1:0", RequestTimeout: 5 * time.Second, ShutdownGrace: time.Second,
		Access: ac, Logger: slog.New(slog.DiscardHandler),
	})
}

// load streams one sample of every pod to s as the bench node's agent and
// waits for it to be acknowledged.
func load(s *server.Server, namespaces, podsPerNS int) error {
	snap := &wire.Snapshot{Time: time.Now().Truncate(time.Second), Interval: time.Second}
	for i := range namespaces {
		for j := range podsPerNS {
			name := fmt.Sprintf("pod-%d", j)
			meta := podmeta.Encode(&podmeta.Pod{UID: fmt.Sprintf("uid-%d-%d", i, j), Namespace: ns(i), Name: name}, &podmeta.Container{Name: "app"})
			snap.Series = append(snap.Series, wire.SeriesState{Path: fmt.Sprintf("/kubepods/%s/%s", ns(i), name), ID: uint64(len(snap.Series) + 1),
				Meta: meta, Values: wire.Values{Processes: 1, RSSBytes: 100 << 20}})
		}
	}
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: node})
	if err != nil {
		return err
	}
	sh, err := shipper.New(shipper.Config{URLs: []string{"http://" + s.Addr.String()}, Token: func() (string, error) { return "agent", nil },
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, enc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	if err := sh.Submit(snap); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := sh.Pending(); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the pods were not acknowledged in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	return nil
}

type result struct {
	p50, p99 time.Duration
	rate     float64
}

// median is the median of each measure over the runs.
func median(rs []result) result {
	var p50, p99 []time.Duration
	var rate []float64
	for _, r := range rs {
		p50, p99, rate = append(p50, r.p50), append(p99, r.p99), append(rate, r.rate)
	}
	slices.Sort(p50)
	slices.Sort(p99)
	slices.Sort(rate)
	return result{p50: p50[len(rs)/2], p99: p99[len(rs)/2], rate: rate[len(rs)/2]}
}

// measure runs clients readers for d, each alternating between the
// replica with every module off and the one with every module on, so that
// both see the same load on this machine: each reads its own namespace,
// with its ServiceAccount's token on the second.
func measure(off, on *server.Server, clients, namespaces int, d time.Duration) (result, result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu    sync.Mutex
		lats  [2][]time.Duration
		first error
		wg    sync.WaitGroup
	)
	// A warm-up fills the caches, the connections and the decoded views.
	stop := time.Now().Add(d + d/5)
	measureFrom := time.Now().Add(d / 5)
	for c := range clients {
		wg.Go(func() {
			i := c % namespaces
			var mine [2][]time.Duration
			for n := c; time.Now().Before(stop); n++ {
				s, modules := off, n%2 == 1
				if modules {
					s = on
				}
				url := fmt.Sprintf("http://%s/v1/pods?namespace=%s", s.Addr, ns(i))
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if modules {
					req.Header.Set("Authorization", fmt.Sprintf("Bearer reader-%d", i))
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: %s", url, resp.Status)
					}
				}
				lat := time.Since(t0)
				if err != nil {
					mu.Lock()
					first = cmp(first, err)
					mu.Unlock()
					return
				}
				if t0.After(measureFrom) {
					mine[n%2] = append(mine[n%2], lat)
				}
			}
			mu.Lock()
			lats[0], lats[1] = append(lats[0], mine[0]...), append(lats[1], mine[1]...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return result{}, result{}, first
	}
	var out [2]result
	for k, l := range lats {
		if len(l) == 0 {
			return result{}, result{}, errors.New("no reads measured")
		}
		slices.Sort(l)
		var sum time.Duration
		for _, x := range l {
			sum += x
		}
		q := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
		out[k] = result{p50: q(0.50), p99: q(0.99), rate: float64(clients) / (sum / time.Duration(len(l))).Seconds()}
	}
	return out[0], out[1], nil
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
