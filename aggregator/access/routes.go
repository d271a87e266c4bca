package access

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/pennyhq/penny/aggregator/authz"
)

// Route is what a request asks.
type Route struct {
	// Open routes need no identity: /v1/health and /metrics.
	Open bool
	// AnyIdentity routes need an identity and no authorization: GET
	// /v1/pricing (prices are configuration, the same for everyone).
	AnyIdentity bool
	// Attrs are what authorization decides about.
	Attrs authz.Attributes
}

// Paths of the replica's API that the routes know; the handlers' own
// packages own them, repeated here to keep this package below them.
const (
	healthPath     = "/v1/health"
	metricsPath    = "/metrics"
	pricingPath    = "/v1/pricing"
	ingestPath     = "/v1/ingest"
	containersPath = "/v1/containers"
	podsPath       = "/v1/pods"
	namespacesPath = "/v1/namespaces"
	nodesPath      = "/v1/nodes"
	allocationPath = "/v1/allocation"
	recommendPath  = "/v1/scaling/recommendations"
	kvPath         = "/v1/kv"
	clusterPath    = "/v1/cluster"
	pprofPath      = "/debug/pprof/"
)

// IsOpen reports whether r needs no identity, /metrics being open.
func IsOpen(r *http.Request) bool { return routes{}.open(r) }

// Classify says what r asks, /metrics being open. It matches paths
// exactly as they come: a path that is not clean (dots, double slashes) or
// not known is asked as an unknown resource, which only admins may use.
func Classify(r *http.Request) Route { return routes{}.classify(r) }

// routes classifies requests; protectMetrics makes /metrics a read of
// every container (its penny_container_* series are).
type routes struct{ protectMetrics bool }

func (rs routes) open(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == healthPath || r.URL.Path == metricsPath && !rs.protectMetrics
}

func (rs routes) classify(r *http.Request) Route {
	if rs.open(r) {
		return Route{Open: true}
	}
	p := r.URL.Path
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case p == metricsPath && read:
		return Route{Attrs: authz.Attributes{Verb: authz.List, Resource: authz.Containers}}
	case p == pricingPath && read:
		return Route{AnyIdentity: true}
	case p == ingestPath:
		return Route{Attrs: authz.Attributes{Verb: authz.Create, Resource: authz.Ingest}}
	case p == containersPath && read:
		return Route{Attrs: authz.Attributes{Verb: authz.List, Resource: authz.Containers}}
	case p == nodesPath && read:
		return Route{Attrs: authz.Attributes{Verb: authz.List, Resource: authz.Nodes}}
	case (p == podsPath || p == namespacesPath) && read:
		res := authz.Pods
		if p == namespacesPath {
			res = authz.Namespaces
		}
		return Route{Attrs: authz.Attributes{Verb: authz.List, Resource: res, Namespace: single(r.URL, "namespace")}}
	case p == allocationPath && read:
		a := authz.Attributes{Verb: authz.List, Resource: authz.Allocations}
		if noIdle(r.URL) {
			a.Namespace, a.Tenant = filterScope(single(r.URL, "filter"))
		}
		return Route{Attrs: a}
	case p == recommendPath && read:
		// A workload's costs and pods: what reading its namespace's
		// allocation shows.
		return Route{Attrs: authz.Attributes{Verb: authz.List, Resource: authz.Allocations, Namespace: single(r.URL, "namespace")}}
	case p == kvPath || strings.HasPrefix(p, kvPath+"/"):
		return Route{Attrs: authz.Attributes{Verb: verb(r.Method, p == kvPath), Resource: authz.KV}}
	case p == clusterPath || strings.HasPrefix(p, clusterPath+"/"):
		return Route{Attrs: authz.Attributes{Verb: verb(r.Method, true), Resource: authz.Members}}
	case strings.HasPrefix(p, pprofPath) && read:
		// Profiles show the process's memory: what reading the store
		// whole needs.
		return Route{Attrs: authz.Attributes{Verb: authz.Get, Resource: authz.KV}}
	}
	return Route{Attrs: authz.Attributes{Verb: verb(r.Method, false)}}
}

// verb is the Kubernetes verb of an HTTP method.
func verb(method string, collection bool) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		if collection {
			return authz.List
		}
		return authz.Get
	case http.MethodPost:
		if collection {
			return authz.Create
		}
		return authz.Update // the KV API's batch and txn
	case http.MethodPut, http.MethodPatch:
		return authz.Update
	case http.MethodDelete:
		return authz.Delete
	}
	return authz.Update // an unknown method is asked as a write
}

// single returns the one value of a query parameter, or "" when it has
// none or several: several values are asked at cluster scope.
func single(u *url.URL, name string) string {
	if u.RawQuery == "" {
		return ""
	}
	v := u.Query()[name]
	if len(v) != 1 {
		return ""
	}
	return v[0]
}

// noIdle reports whether an allocation query leaves the nodes' idle cost
// out: idle (or includeIdle) false and no shareIdle. Idle allocations
// are the nodes', not a namespace's, so only a query without them may be
// scoped to a namespace or tenant.
func noIdle(u *url.URL) bool {
	q := u.Query()
	if len(q["shareIdle"]) > 0 && !(len(q["shareIdle"]) == 1 && q.Get("shareIdle") == "false") {
		return false
	}
	idle := append(q["idle"], q["includeIdle"]...)
	if len(idle) == 0 {
		return false // idle is included by default
	}
	for _, v := range idle {
		if v != "false" {
			return false
		}
	}
	return true
}

// scopeFilter is the one allocation filter that is scoped: exactly one
// namespace or one tenant, equal to a plain name.
var scopeFilter = regexp.MustCompile(`^(?i:(namespace|tenant)):"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)"$`)

// filterScope derives a namespace or tenant scope from a GET
// /v1/allocation filter: namespace:"X" is namespace X, tenant:"T" tenant
// T; any other filter (or none) is cluster scope.
func filterScope(filter string) (namespace, tenant string) {
	m := scopeFilter.FindStringSubmatch(filter)
	if m == nil {
		return "", ""
	}
	if strings.EqualFold(m[1], "namespace") {
		return m[2], ""
	}
	return "", m[2]
}
