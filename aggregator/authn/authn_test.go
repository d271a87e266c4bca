package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/pods", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func writeTokens(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	writeTokens(t, path, "# a comment\nt-alice,alice,1,\"shop,web\"\nt-node,node-1,2,\"penny:agents\"\nt-bob,bob,3\n")
	tf, err := NewTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token string
		want  *Identity
		err   error
	}{
		{"", nil, ErrNoCredentials},
		{"t-alic", nil, ErrInvalid},
		{"t-alice", &Identity{Name: "alice", UID: "1", Groups: []string{"shop", "web"}}, nil},
		{"t-node", &Identity{Name: "node-1", UID: "2", Groups: []string{GroupAgents}, Node: "node-1"}, nil},
		{"t-bob", &Identity{Name: "bob", UID: "3"}, nil},
	} {
		id, err := tf.Authenticate(context.Background(), request(tc.token))
		if !errors.Is(err, tc.err) || (tc.want == nil) != (id == nil) {
			t.Errorf("token %q: %+v, %v; want %+v, %v", tc.token, id, err, tc.want, tc.err)
			continue
		}
		if tc.want != nil && (id.Name != tc.want.Name || id.UID != tc.want.UID || id.Node != tc.want.Node || !slices.Equal(id.Groups, tc.want.Groups)) {
			t.Errorf("token %q: %+v, want %+v", tc.token, id, tc.want)
		}
	}

	// A change is read again; a broken file keeps the last good tokens.
	writeTokens(t, path, "t-carol,carol,4\n")
	tf.f.Recheck()
	if _, err := tf.Authenticate(context.Background(), request("t-carol")); err != nil {
		t.Fatalf("new token after a reload: %v", err)
	}
	if _, err := tf.Authenticate(context.Background(), request("t-alice")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removed token after a reload: %v", err)
	}
	writeTokens(t, path, "t-dave\n")
	tf.f.Recheck()
	if _, err := tf.Authenticate(context.Background(), request("t-carol")); err != nil {
		t.Fatalf("a broken file dropped the tokens: %v", err)
	}
}

func TestTokenFileErrors(t *testing.T) {
	for name, content := range map[string]string{
		"too few fields": "tok,user\n",
		"empty user":     "tok,,1\n",
		"repeated token": "tok,a,1\ntok,b,2\n",
		"bad quoting":    "tok,a,1,\"g\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.csv")
			writeTokens(t, path, content)
			if _, err := NewTokenFile(path, nil); err == nil {
				t.Fatal("token file taken")
			}
		})
	}
	if _, err := NewTokenFile(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("missing token file taken")
	}
}

func FuzzTokenFile(f *testing.F) {
	f.Add("t,u,1,\"a,b\"\n# c\nt2,u2,2\n")
	f.Add("\"t\",\"u\",\"\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseTokenFile(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range m {
			if e.token == "" || e.id.Name == "" || (e.id.InGroup(GroupAgents) != (e.id.Node == e.id.Name)) {
				t.Fatalf("entry %+v of %q", e.id, s)
			}
		}
	})
}

func TestClientCerts(t *testing.T) {
	cert := func(cn string, orgs ...string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: orgs}}
	}
	for _, tc := range []struct {
		name string
		tls  *tls.ConnectionState
		want *Identity
		err  error
	}{
		{"plain http", nil, nil, ErrNoCredentials},
		{"no certificate", &tls.ConnectionState{}, nil, ErrNoCredentials},
		{"not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert("x")}}, nil, ErrInvalid},
		{"no common name", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert("")},
			VerifiedChains: [][]*x509.Certificate{{cert("")}}}, nil, ErrInvalid},
		{"user", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert("alice", "shop")},
			VerifiedChains: [][]*x509.Certificate{{cert("alice", "shop")}}}, &Identity{Name: "alice", Groups: []string{"shop"}}, nil},
		{"agent", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert("node-1", GroupAgents)},
			VerifiedChains: [][]*x509.Certificate{{cert("node-1", GroupAgents)}}},
			&Identity{Name: "node-1", Groups: []string{GroupAgents}, Node: "node-1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request("")
			r.TLS = tc.tls
			id, err := ClientCerts{}.Authenticate(context.Background(), r)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.want != nil && (id.Name != tc.want.Name || id.Node != tc.want.Node || !slices.Equal(id.Groups, tc.want.Groups)) {
				t.Fatalf("%+v, want %+v", id, tc.want)
			}
		})
	}
}

type fixed struct {
	id  *Identity
	err error
}

func (f fixed) Authenticate(context.Context, *http.Request) (*Identity, error) { return f.id, f.err }

func TestUnionAndMiddleware(t *testing.T) {
	alice := &Identity{Name: "alice"}
	for _, tc := range []struct {
		name   string
		u      Union
		status int
		reason string
	}{
		{"first that knows", Union{fixed{err: ErrNoCredentials}, fixed{id: alice}}, http.StatusOK, ""},
		{"invalid beats none", Union{fixed{err: ErrInvalid}, fixed{err: ErrNoCredentials}}, http.StatusUnauthorized, "invalid"},
		{"none", Union{fixed{err: ErrNoCredentials}}, http.StatusUnauthorized, "no_credentials"},
		{"unavailable", Union{fixed{err: ErrInvalid}, fixed{err: ErrUnavailable}}, http.StatusServiceUnavailable, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMiddleware(tc.u, nil, nil, reg)
			var seen *Identity
			h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = FromContext(r.Context()) }))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, request("x"))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == http.StatusOK {
				if seen != alice {
					t.Fatalf("identity %+v in the context", seen)
				}
				return
			}
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Errorf("body %q is no JSON error", w.Body)
			}
			if tc.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if n := testutil.ToFloat64(m.denied.WithLabelValues(tc.reason)); n != 1 {
				t.Errorf("%s counted %v times", tc.reason, n)
			}
		})
	}
}

func TestMiddlewareLetsOpenRequestsThrough(t *testing.T) {
	m := NewMiddleware(Union{fixed{err: ErrNoCredentials}}, func(r *http.Request) bool { return r.URL.Path == "/v1/health" }, nil, nil)
	h := m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/health", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("open path: %d", w.Code)
	}
}
