package authz

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchedPolicyReloads: a change to the policy file takes effect
// without a restart; a file that no longer parses keeps the last good
// rules; a refused file at start is an error.
func TestWatchedPolicyReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	t0 := time.Now().Add(-time.Hour)
	write := func(i int, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	shop := Attributes{Verb: List, Resource: Pods, Namespace: "shop"}
	web := Attributes{Verb: List, Resource: Pods, Namespace: "web"}
	write(0, "rules:\n- users: [alice]\n  namespaces: [shop]\n")
	p, err := LoadPolicy(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		content   string
		shop, web bool // alice may read them
	}{
		{"at start", "", true, false},
		{"moved to web", "rules:\n- users: [alice]\n  namespaces: [web]\n", false, true},
		{"a bad field keeps the last good rules", "rules:\n- users: [alice]\n  namespace: [shop]\n", false, true},
		{"no rules", "rules: []\n", false, false},
	}
	for i, s := range steps {
		if s.content != "" {
			write(i, s.content)
			p.f.Recheck()
		}
		for _, c := range []struct {
			a    Attributes
			want bool
		}{{shop, s.shop}, {web, s.web}} {
			err := p.Authorize(context.Background(), alice, c.a)
			if (err == nil) != c.want || err != nil && !errors.Is(err, ErrDenied) {
				t.Errorf("%s: alice %s: %v, want allowed %v", s.name, c.a, err, c.want)
			}
		}
	}
	write(9, "rules:\n- namespaces: [shop]\n")
	if _, err := LoadPolicy(path, nil); err == nil {
		t.Error("a rule naming nobody was accepted at start")
	}
}
