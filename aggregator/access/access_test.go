package access

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
)

func TestClassify(t *testing.T) {
	at := func(verb, res, ns string) Route {
		return Route{Attrs: authz.Attributes{Verb: verb, Resource: res, Namespace: ns}}
	}
	for _, tc := range []struct {
		method, target string
		want           Route
	}{
		{"GET", "/v1/health", Route{Open: true}},
		{"GET", "/metrics", Route{Open: true}},
		{"POST", "/metrics", at(authz.Update, "", "")},
		{"GET", "/v1/health/../kv/x", at(authz.Get, "", "")},
		{"GET", "/v1/pricing", Route{AnyIdentity: true}},
		{"POST", "/v1/ingest", at(authz.Create, authz.Ingest, "")},
		{"GET", "/v1/containers?node=n1", at(authz.List, authz.Containers, "")},
		{"GET", "/v1/nodes", at(authz.List, authz.Nodes, "")},
		{"GET", "/v1/pods", at(authz.List, authz.Pods, "")},
		{"GET", "/v1/pods?namespace=shop&selector=app%3Dweb", at(authz.List, authz.Pods, "shop")},
		{"GET", "/v1/pods?namespace=shop&namespace=web", at(authz.List, authz.Pods, "")},
		{"GET", "/v1/namespaces?namespace=shop", at(authz.List, authz.Namespaces, "shop")},
		{"GET", "/v1/pods/", at(authz.Get, "", "")},
		{"GET", "/v1/allocation?window=1d", at(authz.List, authz.Allocations, "")},
		{"GET", "/v1/scaling/recommendations?namespace=shop&window=7d", at(authz.List, authz.Allocations, "shop")},
		{"GET", "/v1/scaling/recommendations", at(authz.List, authz.Allocations, "")},
		{"GET", "/v1/scaling/recommendations?namespace=shop&namespace=web", at(authz.List, authz.Allocations, "")},
		{"POST", "/v1/scaling/recommendations?namespace=shop", at(authz.Update, "", "")},
		{"GET", `/v1/allocation?window=1d&filter=namespace:"shop"`, at(authz.List, authz.Allocations, "")},
		{"GET", `/v1/allocation?window=1d&idle=false&filter=namespace:"shop"`, at(authz.List, authz.Allocations, "shop")},
		{"GET", `/v1/allocation?idle=false&shareIdle=true&filter=namespace:"shop"`, at(authz.List, authz.Allocations, "")},
		{"GET", `/v1/allocation?idle=false&filter=namespace:"shop"|namespace:"web"`, at(authz.List, authz.Allocations, "")},
		{"GET", `/v1/allocation?idle=false&filter=namespace!:"shop"`, at(authz.List, authz.Allocations, "")},
		{"GET", `/v1/allocation?idle=false&filter=namespace:"shop"&filter=pod:"x"`, at(authz.List, authz.Allocations, "")},
		{"GET", `/v1/allocation?includeIdle=false&filter=tenant:"acme"`,
			Route{Attrs: authz.Attributes{Verb: authz.List, Resource: authz.Allocations, Tenant: "acme"}}},
		{"GET", "/v1/kv", at(authz.List, authz.KV, "")},
		{"GET", "/v1/kv/a/b", at(authz.Get, authz.KV, "")},
		{"PUT", "/v1/kv/a", at(authz.Update, authz.KV, "")},
		{"DELETE", "/v1/kv/a", at(authz.Delete, authz.KV, "")},
		{"POST", "/v1/kv/txn", at(authz.Update, authz.KV, "")},
		{"GET", "/v1/cluster", at(authz.List, authz.Members, "")},
		{"POST", "/v1/cluster/members", at(authz.Create, authz.Members, "")},
		{"DELETE", "/v1/cluster/members/3", at(authz.Delete, authz.Members, "")},
		{"GET", "/debug/pprof/heap", at(authz.Get, authz.KV, "")},
		{"GET", "//v1/pods", at(authz.Get, "", "")},
		{"GET", "/v1/kvx", at(authz.Get, "", "")},
	} {
		r := httptest.NewRequest(tc.method, "http://x"+tc.target, nil)
		if got := Classify(r); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: %+v, want %+v", tc.method, tc.target, got, tc.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("GET", "/v1/pods", "namespace=shop")
	f.Add("GET", "/v1/allocation", `idle=false&filter=namespace:"a"`)
	f.Fuzz(func(t *testing.T, method, path, query string) {
		r := &http.Request{Method: method, URL: &neturl.URL{Path: path, RawQuery: query}}
		rt := Classify(r)
		if rt.Open && path != healthPath && path != metricsPath {
			t.Fatalf("%s %s open", method, path)
		}
		if rt.Attrs.Namespace != "" && rt.Attrs.Resource != authz.Pods && rt.Attrs.Resource != authz.Namespaces && rt.Attrs.Resource != authz.Allocations {
			t.Fatalf("%s %s?%s: namespace scope on %q", method, path, query, rt.Attrs.Resource)
		}
	})
}

// identity is an authenticator that knows every bearer token as the user
// of that name.
type identity struct{}

func (identity) Authenticate(_ context.Context, r *http.Request) (*authn.Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, authn.ErrNoCredentials
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, authn.ErrInvalid
	}
	id := &authn.Identity{Name: tok}
	if id.Name == "root" {
		id.Groups = []string{authn.GroupAdmins}
	}
	return id, nil
}

func do(t *testing.T, h http.Handler, method, target, user string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if user != "" {
		r.Header.Set("Authorization", "Bearer "+user)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

func TestNoModulesNoChain(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Wrap(ok); reflect.ValueOf(h).Pointer() != reflect.ValueOf(ok).Pointer() {
		t.Fatal("the chain with every module off is not the handler itself")
	}
	if len(c.Modules()) != 0 {
		t.Fatalf("modules %v", c.Modules())
	}
	if _, err := New(Config{Authorizer: authz.AlwaysAllow{}}); err == nil {
		t.Fatal("authorization without authentication taken")
	}
}

func TestRateLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Unix(1000, 0)
	c, err := New(Config{Authenticator: identity{}, RateLimit: RateLimitConfig{QPS: 1, Burst: 2, MaxIdentities: 2,
		Now: func() time.Time { return now }}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Wrap(ok)
	for i := range 2 {
		if w := do(t, h, "GET", "/v1/nodes", "alice"); w.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := do(t, h, "GET", "/v1/nodes", "alice")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the burst: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	var e struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("429 body %q", w.Body)
	}
	// Another identity has its own bucket; probes are not limited.
	if w := do(t, h, "GET", "/v1/nodes", "bob"); w.Code != http.StatusOK {
		t.Fatalf("bob: %d", w.Code)
	}
	if w := do(t, h, "GET", "/v1/health", ""); w.Code != http.StatusOK {
		t.Fatalf("health: %d", w.Code)
	}
	now = now.Add(time.Second)
	if w := do(t, h, "GET", "/v1/nodes", "alice"); w.Code != http.StatusOK {
		t.Fatalf("a second later: %d", w.Code)
	}
	if n := testutil.ToFloat64(c.rate.limited); n != 1 {
		t.Fatalf("limited counted %v times", n)
	}
	do(t, h, "GET", "/v1/nodes", "carol")
	if n := c.rate.limiters.Len(); n != 2 {
		t.Fatalf("%d limiters kept, want at most 2", n)
	}
}

func TestRateLimitWithoutAuthenticationByAddress(t *testing.T) {
	c, err := New(Config{RateLimit: RateLimitConfig{QPS: 1, Burst: 1, Now: func() time.Time { return time.Unix(1, 0) }}})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Wrap(ok)
	do(t, h, "GET", "/v1/nodes", "")
	if w := do(t, h, "GET", "/v1/nodes", ""); w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request from one address: %d", w.Code)
	}
}

func TestRateLimitConfig(t *testing.T) {
	for _, c := range []RateLimitConfig{{QPS: -1}, {QPS: 1, Burst: -1}} {
		c.Complete()
		if c.Validate() == nil {
			t.Errorf("%+v taken", c)
		}
	}
	c := RateLimitConfig{QPS: 2.5}
	c.Complete()
	if c.Burst != 5 {
		t.Errorf("burst %d, want 5", c.Burst)
	}
}

func TestAuthorizationAndAudit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	reg := prometheus.NewRegistry()
	pol, err := authz.ParsePolicy([]byte("rules:\n- users: [alice]\n  namespaces: [shop]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Authenticator: identity{}, Authorizer: authz.Policy{File: pol}, AuditLogPath: path, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if got := c.Modules(); !reflect.DeepEqual(got, []string{"authentication", "audit", "authorization"}) {
		t.Fatalf("modules %v", got)
	}
	h := c.Wrap(ok)
	for _, tc := range []struct {
		method, target, user string
		status               int
		audited              bool
	}{
		{"GET", "/v1/pods?namespace=shop", "alice", http.StatusOK, false},
		{"GET", "/v1/pods?namespace=web", "alice", http.StatusForbidden, true},
		{"GET", "/v1/pods?namespace=shop", "", http.StatusUnauthorized, true},
		{"PUT", "/v1/kv/a", "alice", http.StatusForbidden, true},
		{"PUT", "/v1/kv/a", "root", http.StatusOK, true},
		{"GET", "/v1/kv/a", "root", http.StatusOK, false},
		{"GET", "/v1/health", "", http.StatusOK, false},
		{"GET", "/v1/pricing", "alice", http.StatusOK, false},
	} {
		if w := do(t, h, tc.method, tc.target, tc.user); w.Code != tc.status {
			t.Fatalf("%s %s as %q: %d, want %d", tc.method, tc.target, tc.user, w.Code, tc.status)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if e.Time.IsZero() || e.Path == "" {
			t.Fatalf("audit line %q lacks time or path", sc.Text())
		}
		got = append(got, e.Method+" "+e.Path+" "+e.User+" "+e.Verb+" "+strconv.Itoa(e.Status))
	}
	want := []string{
		"GET /v1/pods alice list 403",
		"GET /v1/pods  list 401",
		"PUT /v1/kv/a alice update 403",
		"PUT /v1/kv/a root update 200",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audit log:\n%q\nwant\n%q", got, want)
	}
	if n := testutil.ToFloat64(c.authz.denied.WithLabelValues(authz.Pods)); n != 1 {
		t.Errorf("pods denials counted %v", n)
	}
}

func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	now := time.Unix(1000, 0)
	asked := 0
	au := authFunc(func(r *http.Request) (*authn.Identity, error) {
		asked++
		if r.Header.Get("Authorization") == "Bearer good" {
			return &authn.Identity{Name: "alice"}, nil
		}
		return nil, authn.ErrInvalid
	})
	c, err := New(Config{Authenticator: au, RateLimit: RateLimitConfig{QPS: 10, Burst: 3, Now: func() time.Time { return now }}})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Wrap(ok)
	for i := range 3 {
		if w := do(t, h, "GET", "/v1/nodes", "guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, w.Code)
		}
	}
	w := do(t, h, "GET", "/v1/nodes", "guess")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a guess past the failures' burst: %d, want 429 with Retry-After", w.Code)
	}
	if asked != 3 {
		t.Fatalf("the authenticator was asked %d times, want 3: a throttled guess must not reach it", asked)
	}
	now = now.Add(time.Second) // a tenth of 10/s: one more failure allowed
	if w := do(t, h, "GET", "/v1/nodes", "good"); w.Code != http.StatusOK {
		t.Fatalf("a good token a second later: %d", w.Code)
	}
}

type authFunc func(*http.Request) (*authn.Identity, error)

func (f authFunc) Authenticate(_ context.Context, r *http.Request) (*authn.Identity, error) {
	return f(r)
}

// FuzzChain sends arbitrary requests through every module: nothing
// panics, a request without credentials reaches the handler only on an
// open path, and every refusal is a JSON error.
func FuzzChain(f *testing.F) {
	pol, err := authz.ParsePolicy([]byte("rules:\n- users: [alice]\n  namespaces: [shop]\n"))
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(Config{Authenticator: identity{}, Authorizer: authz.Policy{File: pol},
		RateLimit: RateLimitConfig{QPS: 1e9, Burst: 1e9}, AuditLogPath: filepath.Join(f.TempDir(), "audit")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close() })
	f.Add("GET", "/v1/pods", "namespace=shop", "Bearer alice")
	f.Add("PUT", "/v1/kv/a", "", "Bearer root")
	f.Add("GET", "/v1/health", "", "")
	f.Fuzz(func(t *testing.T, method, path, query, auth string) {
		reached := false
		h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached = true; w.WriteHeader(http.StatusOK) }))
		r := &http.Request{Method: method, URL: &neturl.URL{Path: path, RawQuery: query}, Header: http.Header{}, RemoteAddr: "10.0.0.1:1"}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if reached {
			if auth == "" && !IsOpen(r) {
				t.Fatalf("%s %s?%s reached the handler without credentials", method, path, query)
			}
			return
		}
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("%s %s: refusal %d %q is no JSON error", method, path, w.Code, w.Body)
		}
	})
}

func TestProtectMetrics(t *testing.T) {
	pol, err := authz.ParsePolicy([]byte("rules:\n- users: [prometheus]\n  cluster: true\n- users: [alice]\n  namespaces: [shop]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, protect := range []bool{false, true} {
		c, err := New(Config{Authenticator: identity{}, Authorizer: authz.Policy{File: pol}, ProtectMetrics: protect})
		if err != nil {
			t.Fatal(err)
		}
		h := c.Wrap(ok)
		want := map[string]int{"": http.StatusOK, "alice": http.StatusOK, "prometheus": http.StatusOK}
		if protect {
			want = map[string]int{"": http.StatusUnauthorized, "alice": http.StatusForbidden, "prometheus": http.StatusOK}
		}
		for user, status := range want {
			if w := do(t, h, "GET", "/metrics", user); w.Code != status {
				t.Errorf("protect %t, GET /metrics as %q: %d, want %d", protect, user, w.Code, status)
			}
		}
		if w := do(t, h, "GET", "/v1/health", ""); w.Code != http.StatusOK {
			t.Errorf("protect %t: health %d", protect, w.Code)
		}
	}
}
