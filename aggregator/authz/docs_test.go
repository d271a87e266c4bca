package authz

import (
	"os"
	"strings"
	"testing"
)

// TestDocsPolicyExample checks that the policy file of docs/security.md
// parses and grants what its comments say.
func TestDocsPolicyExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### The policy file\n\n```yaml\n")
	if !ok {
		t.Fatal("docs/security.md has no policy file example")
	}
	example, _, _ := strings.Cut(after, "```")
	p, err := ParsePolicy([]byte(example))
	if err != nil {
		t.Fatalf("the example: %v", err)
	}
	if len(p.Rules) != 4 || !p.Rules[2].Cluster || !p.Rules[3].Admin || p.Rules[1].Tenants[0] != "acme" {
		t.Fatalf("the example's rules: %+v", p.Rules)
	}
}
