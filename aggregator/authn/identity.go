package authn

import (
	"context"
	"slices"
)

// Groups with a meaning to Penny.
const (
	// GroupAgents holds the node agents; each speaks only for its Node.
	GroupAgents = "penny:agents"
	// GroupAdmins may do anything: the KV API, membership, profiles.
	GroupAdmins = "penny:admins"
)

// Identity is who sent a request.
type Identity struct {
	// Name is the user name: a certificate's CN, a token file's user, a
	// TokenReview's username (system:serviceaccount:NS:NAME for a
	// ServiceAccount).
	Name string
	// UID is the user's uid, when the authenticator knows one.
	UID string
	// Groups are the user's groups.
	Groups []string
	// Node is set only for agents: the node the agent speaks for.
	Node string
	// Extra is the TokenReview's extra information, passed on to
	// SubjectAccessReview.
	Extra map[string][]string
}

// InGroup reports whether the identity is in group g.
func (id *Identity) InGroup(g string) bool { return id != nil && slices.Contains(id.Groups, g) }

// IsAdmin reports whether the identity is in GroupAdmins.
func (id *Identity) IsAdmin() bool { return id.InGroup(GroupAdmins) }

// IsAgent reports whether the identity is a node agent.
func (id *Identity) IsAgent() bool { return id != nil && id.Node != "" }

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity of the request ctx belongs to, or nil
// when authentication is off.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}

// agent makes id the agent of node: it sets Node and adds GroupAgents.
func agent(id *Identity, node string) {
	id.Node = node
	if !slices.Contains(id.Groups, GroupAgents) {
		id.Groups = append(id.Groups, GroupAgents)
	}
}

// notAgent removes GroupAgents from an identity that speaks for no node:
// the group means nothing without one.
func notAgent(id *Identity) {
	id.Node = ""
	id.Groups = slices.DeleteFunc(id.Groups, func(g string) bool { return g == GroupAgents })
}
