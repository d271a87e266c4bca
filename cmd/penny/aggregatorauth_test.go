package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/authz"
)

func TestAggregatorAccessFlags(t *testing.T) {
	dir := t.TempDir()
	tokens, policy, badPolicy := filepath.Join(dir, "tokens.csv"), filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "bad.yaml")
	for f, content := range map[string]string{tokens: "t,alice,1\n", policy: "rules:\n- users: [alice]\n  namespaces: [shop]\n",
		badPolicy: "rules:\n- users: [alice]\n"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	valid := []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://127.0.0.1:1"}
	with := func(extra ...string) []string { return append(slices.Clone(valid), extra...) }
	for _, tt := range []struct {
		name    string
		args    []string
		want    string // substring of the error; empty means valid
		modules []string
	}{
		{"loopback without authentication", valid, "", nil},
		{"localhost without authentication", with("--listen", "localhost:7379"), "", nil},
		{"ipv6 loopback", with("--listen", "[::1]:7379"), "", nil},
		{"every address without authentication", with("--listen", "0.0.0.0:7379"), "--insecure-allow-anonymous", nil},
		{"no host without authentication", with("--listen", ":7379"), "is not a loopback address", nil},
		{"a pod IP without authentication", with("--listen", "10.0.0.7:7379"), "authentication is off", nil},
		{"anonymous on purpose", with("--listen", "0.0.0.0:7379", "--insecure-allow-anonymous"), "", nil},
		{"anonymous with a rate limit", with("--rate-limit-qps", "5"), "", []string{"rate-limit"}},
		{"token file", with("--listen", "0.0.0.0:7379", "--token-auth-file", tokens), "",
			[]string{"authentication", "rate-limit", "authorization"}},
		{"token file, audit, no rate limit", with("--token-auth-file", tokens, "--rate-limit-qps", "0", "--api-audit-log-path", filepath.Join(dir, "audit")), "",
			[]string{"authentication", "audit", "authorization"}},
		{"policy", with("--token-auth-file", tokens, "--authorization-policy-file", policy), "", []string{"authentication", "rate-limit", "authorization"}},
		{"always allow", with("--token-auth-file", tokens, "--authorization-mode", "AlwaysAllow"), "", []string{"authentication", "rate-limit", "authorization"}},
		{"anonymous and authentication", with("--token-auth-file", tokens, "--insecure-allow-anonymous"), "say one or the other", nil},
		{"a mode without authentication", with("--authorization-mode", "Policy"), "--authorization-mode needs authentication", nil},
		{"an unknown mode", with("--token-auth-file", tokens, "--authorization-mode", "RBAC"), `--authorization-mode "RBAC"`, nil},
		{"a policy file in another mode", with("--token-auth-file", tokens, "--authorization-mode", "AlwaysAllow", "--authorization-policy-file", policy),
			"needs --authorization-mode Policy", nil},
		{"a bad policy file", with("--token-auth-file", tokens, "--authorization-policy-file", badPolicy), "grants nothing", nil},
		{"agent service account without token reviews", with("--token-auth-file", tokens, "--agent-service-account", "penny/agent"),
			"need --authentication-token-webhook", nil},
		{"a bad agent service account", with("--authentication-token-webhook", "--agent-service-account", "agent"), "want NAMESPACE/NAME", nil},
		{"kubeconfig without kubernetes", with("--auth-kubeconfig", "k"), "--auth-kubeconfig needs", nil},
		{"a negative rate", with("--rate-limit-qps", "-1"), "--rate-limit-qps", nil},
		{"metrics authorized without authentication", with("--authorize-metrics"), "--authorize-metrics needs authentication", nil},
		{"metrics authorized", with("--token-auth-file", tokens, "--authorize-metrics"), "", []string{"authentication", "rate-limit", "authorization"}},
		{"no burst", with("--rate-limit-burst", "0"), "--rate-limit-burst", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseAggregatorFlags(tt.args, &bytes.Buffer{})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ac, err := c.Access.config(slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			chain, err := access.New(ac)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = chain.Close() })
			if got := chain.Modules(); !slices.Equal(got, tt.modules) {
				t.Fatalf("modules %v, want %v", got, tt.modules)
			}
		})
	}
}

func TestAggregatorDefaultAuthorizationIsPolicy(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("t,alice,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseAggregatorFlags([]string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://127.0.0.1:1",
		"--token-auth-file", tokens}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := c.Access.config(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := ac.Authorizer.(authz.Policy); !ok || len(p.File.Rules) != 0 {
		t.Fatalf("authorizer %#v, want an empty policy: admins and agents only", ac.Authorizer)
	}
	if ac.RateLimit.QPS != defaultRateLimitQPS || ac.RateLimit.Burst != defaultRateLimitBurst {
		t.Fatalf("rate limit %+v, want the defaults", ac.RateLimit)
	}
}

// TestAggregatorMetricsAuthorization: /metrics needs an identity whenever
// the API does, unless --authorize-metrics=false says otherwise.
func TestAggregatorMetricsAuthorization(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokens, []byte("t,alice,1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://127.0.0.1:1"}
	for _, tt := range []struct {
		name  string
		extra []string
		want  bool
	}{
		{"authentication", []string{"--token-auth-file", tokens}, true},
		{"authentication, metrics open on purpose", []string{"--token-auth-file", tokens, "--authorize-metrics=false"}, false},
		{"no authentication", nil, false},
		{"no authentication, metrics open", []string{"--authorize-metrics=false"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseAggregatorFlags(append(slices.Clone(base), tt.extra...), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			ac, err := c.Access.config(slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if ac.ProtectMetrics != tt.want {
				t.Fatalf("/metrics protected: %v, want %v", ac.ProtectMetrics, tt.want)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "127.1.2.3:1": true, "[::1]:1": true, "localhost:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.1.2.3:1": false, "example.com:1": false, "nope": false} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %t", addr, got)
		}
	}
}
