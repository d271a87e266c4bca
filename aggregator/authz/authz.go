package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/pennyhq/penny/aggregator/authn"
)

// Group is the API group of Penny's virtual resources in
// SubjectAccessReviews and RBAC rules.
const Group = "penny.dev"

// Virtual resources.
const (
	Pods        = "pods"
	Containers  = "containers"
	Namespaces  = "namespaces"
	Nodes       = "nodes"
	Allocations = "allocations"
	KV          = "kv"
	Members     = "members"
	// Ingest is the agents' stream; no authorizer is asked about it, an
	// agent identity may stream, nobody else.
	Ingest = "ingest"
)

// Verbs.
const (
	Get    = "get"
	List   = "list"
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// Errors.
var (
	// ErrDenied means the identity may not do what it asked.
	ErrDenied = errors.New("authz: forbidden")
	// ErrUnavailable means no decision could be made now.
	ErrUnavailable = errors.New("authz: cannot decide now")
)

// Attributes describe a request.
type Attributes struct {
	Verb     string
	Resource string
	// Namespace scopes a read to one namespace; empty is cluster scope.
	Namespace string
	// Tenant scopes an allocation read to one tenant (Policy only;
	// Webhook asks for cluster scope).
	Tenant string
}

// String describes the attributes for errors and logs.
func (a Attributes) String() string {
	s := a.Verb + " " + Group + "/" + a.Resource
	switch {
	case a.Namespace != "":
		s += " in namespace " + a.Namespace
	case a.Tenant != "":
		s += " of tenant " + a.Tenant
	default:
		s += " at cluster scope"
	}
	return s
}

// Write reports whether the verb changes something.
func (a Attributes) Write() bool { return a.Verb == Create || a.Verb == Update || a.Verb == Delete }

// Authorizer decides about a request.
type Authorizer interface {
	// Authorize returns nil when id may do a, an error wrapping ErrDenied
	// when not, and one wrapping ErrUnavailable when it cannot say now.
	Authorize(ctx context.Context, id *authn.Identity, a Attributes) error
}

// AlwaysAllow allows everything.
type AlwaysAllow struct{}

// Authorize implements Authorizer.
func (AlwaysAllow) Authorize(context.Context, *authn.Identity, Attributes) error { return nil }

// Rules applies the rules that hold whatever the authorizer: an
// anonymous request is denied, agents may stream to the ingest and do
// nothing else, nobody else may stream, group penny:admins may do
// everything else and nobody else may use a path no resource names. The
// rest it asks next.
type Rules struct{ Next Authorizer }

// Authorize implements Authorizer.
func (r Rules) Authorize(ctx context.Context, id *authn.Identity, a Attributes) error {
	switch {
	case id == nil:
		return fmt.Errorf("%w: anonymous", ErrDenied)
	case a.Resource == Ingest && id.IsAgent():
		return nil
	case a.Resource == Ingest:
		return fmt.Errorf("%w: %q is no agent: the ingest takes node agents only", ErrDenied, id.Name)
	case id.IsAgent():
		return fmt.Errorf("%w: agent of node %q may only stream to the ingest", ErrDenied, id.Node)
	case id.IsAdmin():
		return nil
	case a.Resource == "":
		return fmt.Errorf("%w: %q is no admin: unknown paths are the admins'", ErrDenied, id.Name)
	}
	return r.Next.Authorize(ctx, id, a)
}
