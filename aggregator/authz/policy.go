package authz

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/internal/watchfile"
)

// PolicyFile is the policy file of the Policy authorizer, in YAML:
//
//	rules:
//	- users: [alice]           # user names (a certificate's CN, a token's user)
//	  groups: [team-shop]      # or groups; a rule applies to either
//	  namespaces: [shop, web]  # reads of these namespaces ("*": all of them)
//	  tenants: [acme]          # cost allocation reads of these tenants
//	  cluster: false           # reads of everything: every namespace, containers, nodes, allocations
//	  admin: false             # everything: the KV API and membership too
type PolicyFile struct {
	Rules []PolicyRule `json:"rules"`
}

// PolicyRule grants its users and groups what it says.
type PolicyRule struct {
	Users      []string `json:"users,omitempty"`
	Groups     []string `json:"groups,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
	Tenants    []string `json:"tenants,omitempty"`
	Cluster    bool     `json:"cluster,omitempty"`
	Admin      bool     `json:"admin,omitempty"`
}

// ParsePolicy parses and checks a policy file; unknown fields are errors.
func ParsePolicy(b []byte) (*PolicyFile, error) {
	var p PolicyFile
	if len(bytes.TrimSpace(b)) > 0 {
		if err := yaml.UnmarshalStrict(b, &p); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	for i, r := range p.Rules {
		if len(r.Users) == 0 && len(r.Groups) == 0 {
			return nil, fmt.Errorf("policy: rule %d names no users or groups", i+1)
		}
		if len(r.Namespaces) == 0 && len(r.Tenants) == 0 && !r.Cluster && !r.Admin {
			return nil, fmt.Errorf("policy: rule %d grants nothing", i+1)
		}
		if slices.Contains(r.Users, "") || slices.Contains(r.Groups, "") || slices.Contains(r.Namespaces, "") || slices.Contains(r.Tenants, "") {
			return nil, fmt.Errorf("policy: rule %d has an empty name", i+1)
		}
	}
	return &p, nil
}

// maxPolicyFile bounds a policy file's size.
const maxPolicyFile = 16 << 20

// WatchedPolicy authorizes by the policy file at a path, read again when
// it changes (looked at at most once a second, on requests), as
// kube-apiserver's policy and token files are: a file that no longer
// parses keeps the rules of the last good one in force, and says so in the
// log.
type WatchedPolicy struct {
	f *watchfile.File[*PolicyFile]
}

// LoadPolicy reads the policy file at path: an error if it is refused.
func LoadPolicy(path string, log *slog.Logger) (*WatchedPolicy, error) {
	f, err := watchfile.New(path, "policy file", maxPolicyFile, ParsePolicy, log)
	if err != nil {
		return nil, err
	}
	return &WatchedPolicy{f: f}, nil
}

// Authorize implements Authorizer with the rules in force.
func (w *WatchedPolicy) Authorize(ctx context.Context, id *authn.Identity, a Attributes) error {
	return Policy{File: w.f.Load()}.Authorize(ctx, id, a)
}

// Policy authorizes by a policy file: reads of a namespace by the rules
// that name it, reads at cluster scope by rules with cluster, cost
// allocation reads of a tenant by the rules that name it, and everything
// by rules with admin. A nil or empty policy allows nothing (Rules still
// lets penny:admins do everything).
type Policy struct{ File *PolicyFile }

// Authorize implements Authorizer.
func (p Policy) Authorize(_ context.Context, id *authn.Identity, a Attributes) error {
	if id == nil {
		return fmt.Errorf("%w: anonymous", ErrDenied)
	}
	if p.File != nil {
		for i := range p.File.Rules {
			r := &p.File.Rules[i]
			if r.applies(id) && r.allows(a) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no policy rule lets %q %s", ErrDenied, id.Name, a)
}

func (r *PolicyRule) applies(id *authn.Identity) bool {
	return slices.Contains(r.Users, id.Name) || slices.ContainsFunc(r.Groups, id.InGroup)
}

func (r *PolicyRule) allows(a Attributes) bool {
	switch {
	case r.Admin:
		return true
	case a.Write() || a.Resource == KV || a.Resource == Members || a.Resource == Ingest:
		return false
	case r.Cluster:
		return true
	case a.Namespace != "":
		return slices.Contains(r.Namespaces, a.Namespace) || slices.Contains(r.Namespaces, "*")
	case a.Tenant != "":
		return a.Resource == Allocations && (slices.Contains(r.Tenants, a.Tenant) || slices.Contains(r.Tenants, "*"))
	}
	return false
}
