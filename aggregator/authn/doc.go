// Package authn says who sent a request to an aggregator replica: an
// Identity (a user name, its groups and, for agents, the node the agent
// speaks for), found by a union of authenticators the configuration turns
// on: client certificates (CN the user, O the groups), bearer tokens from a
// token file (kube-apiserver's --token-auth-file format, reloaded when it
// changes) and Kubernetes TokenReview (cached by token hash for a short
// while). An agent is an identity with a Node: a certificate with
// O=penny:agents, a token file user in group penny:agents, or a
// ServiceAccount token of one of the agent service accounts, bound to a pod
// on that node.
//
// The Middleware puts the identity into the request's context, where
// FromContext finds it, and answers 401 with a JSON error and
// WWW-Authenticate to a request without valid credentials.
package authn
