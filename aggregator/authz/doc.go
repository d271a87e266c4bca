// Package authz decides what an authenticated identity may do on a
// replica. Requests are described as Attributes on virtual resources of
// the API group penny.dev (pods, containers, namespaces, nodes,
// allocations, kv, members) with Kubernetes verbs (get, list, create,
// update, delete) and, for namespaced reads, a namespace. Three
// authorizers:
//
//   - Webhook asks Kubernetes with a SubjectAccessReview, so RBAC decides
//     (a Role on penny.dev pods in a namespace lets its subjects read that
//     namespace), and caches the answers briefly;
//   - Policy reads a YAML policy file that maps users and groups to
//     namespaces, tenants, cluster-wide reads or admin, for use outside
//     Kubernetes;
//   - AlwaysAllow lets every authenticated identity do everything.
//
// Whatever the authorizer, group penny:admins may do everything and node
// agents (identities with a Node) may only stream to the ingest: Rules
// applies these before the authorizer is asked.
package authz
