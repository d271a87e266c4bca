package access

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// Config says which modules are on.
type Config struct {
	// Authenticator, when set, turns authentication on: every request but
	// the open ones needs an identity.
	Authenticator authn.Authenticator
	// Authorizer decides what identities may do; it needs authentication,
	// and is authz.AlwaysAllow when authentication is on without it.
	// authz.Rules (admins, agents only at the ingest) always comes first.
	Authorizer authz.Authorizer
	// RateLimit limits requests per identity (per client address without
	// authentication); off when its QPS is 0.
	RateLimit RateLimitConfig
	// AuditLogPath, when set, appends a JSON line for every write and
	// every refusal to this file.
	AuditLogPath string
	// ProtectMetrics makes GET /metrics need an identity allowed to list
	// penny.dev/containers at cluster scope (with authentication on):
	// its penny_container_* series are every container's. Otherwise
	// /metrics is open, as Prometheus scrapes it by default.
	ProtectMetrics bool
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.RateLimit.Complete()
	if c.Authenticator != nil && c.Authorizer == nil {
		c.Authorizer = authz.AlwaysAllow{}
	}
}

// Validate checks a completed config.
func (c *Config) Validate() error {
	if c.Authorizer != nil && c.Authenticator == nil {
		return errors.New("access: authorization needs authentication")
	}
	return c.RateLimit.Validate()
}

// Chain is the modules the configuration turned on.
type Chain struct {
	cfg   Config
	rs    routes
	audit *Audit
	authn *authn.Middleware
	authz *authorizer
	rate  *rateLimiter
}

// New builds the chain of cfg.
func New(cfg Config) (*Chain, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Chain{cfg: cfg, rs: routes{protectMetrics: cfg.ProtectMetrics && cfg.Authenticator != nil}}
	if cfg.AuditLogPath != "" {
		a, err := OpenAudit(cfg.AuditLogPath, cfg.Logger, cfg.Registerer)
		if err != nil {
			return nil, err
		}
		a.rs = c.rs
		c.audit = a
	}
	if cfg.RateLimit.QPS > 0 {
		c.rate = newRateLimiter(cfg.RateLimit, cfg.Registerer)
		c.rate.rs = c.rs
	}
	if cfg.Authenticator != nil {
		c.authn = authn.NewMiddleware(cfg.Authenticator, c.rs.open, cfg.Logger, cfg.Registerer)
		c.authn.OnRefuse = func(r *http.Request, status int) {
			if c.rate != nil {
				c.rate.failed(r)
			}
			if c.audit != nil {
				c.audit.refused(r, status)
			}
		}
		if c.rate != nil {
			c.authn.Throttled = func(w http.ResponseWriter, r *http.Request) bool {
				if !c.rate.failing(r) {
					return false
				}
				c.rate.refuse(w, time.Second)
				if c.audit != nil {
					c.audit.refused(r, http.StatusTooManyRequests)
				}
				return true
			}
		}
	}
	if cfg.Authorizer != nil {
		c.authz = newAuthorizer(authz.Rules{Next: cfg.Authorizer}, cfg.Logger, cfg.Registerer)
		c.authz.rs = c.rs
	}
	return c, nil
}

// Modules names the modules on, in the order a request meets them.
func (c *Chain) Modules() []string {
	var m []string
	if c.authn != nil {
		m = append(m, "authentication")
	}
	if c.audit != nil {
		m = append(m, "audit")
	}
	if c.rate != nil {
		m = append(m, "rate-limit")
	}
	if c.authz != nil {
		m = append(m, "authorization")
	}
	return m
}

// Wrap returns h behind the modules: authentication, then the audit log
// (which so sees every identity), rate limits and authorization. With
// every module off it returns h.
func (c *Chain) Wrap(h http.Handler) http.Handler {
	if c.authz != nil {
		h = c.authz.wrap(h)
	}
	if c.rate != nil {
		h = c.rate.wrap(h)
	}
	if c.audit != nil {
		h = c.audit.wrap(h)
	}
	if c.authn != nil {
		h = c.authn.Wrap(h)
	}
	return h
}

// Close closes the audit log.
func (c *Chain) Close() error {
	if c.audit != nil {
		return c.audit.Close()
	}
	return nil
}

// authorizer is the authorization module.
type authorizer struct {
	rs     routes
	a      authz.Authorizer
	log    *slog.Logger
	denied *prometheus.CounterVec
}

func newAuthorizer(a authz.Authorizer, log *slog.Logger, reg prometheus.Registerer) *authorizer {
	m := &authorizer{a: a, log: log, denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_authz_denied_total",
		Help: "Requests refused by authorization (403), by virtual resource (\"unknown\" for paths no resource names)."}, []string{"resource"})}
	for _, r := range []string{authz.Pods, authz.Containers, authz.Namespaces, authz.Nodes, authz.Allocations, authz.KV, authz.Members, authz.Ingest, "unknown"} {
		m.denied.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.denied)
	}
	return m
}

func (m *authorizer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := m.rs.classify(r)
		if rt.Open || rt.AnyIdentity {
			next.ServeHTTP(w, r)
			return
		}
		err := m.a.Authorize(r.Context(), authn.FromContext(r.Context()), rt.Attrs)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		if !errors.Is(err, authz.ErrDenied) {
			m.log.Warn("authorization unavailable", "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "1")
			kvhttp.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot authorize now"})
			return
		}
		res := rt.Attrs.Resource
		if res == "" {
			res = "unknown"
		}
		m.denied.WithLabelValues(res).Inc()
		m.log.Debug("authorization denied", "path", r.URL.Path, "err", err)
		kvhttp.WriteJSON(w, http.StatusForbidden, map[string]string{"error": forbidden(rt.Attrs)})
	})
}

// forbidden says what was refused, without the authorizer's reasons.
func forbidden(a authz.Attributes) string {
	switch a.Resource {
	case "":
		return "forbidden: only admins may use this path"
	case authz.Ingest:
		return "forbidden: the ingest takes node agents only (a client certificate with O=" + authn.GroupAgents +
			", a token file user in that group, or an agent ServiceAccount token bound to a pod)"
	}
	msg := fmt.Sprintf("forbidden: may not %s", a)
	if a.Namespace == "" && a.Tenant == "" && (a.Resource == authz.Pods || a.Resource == authz.Namespaces) {
		msg += " (ask for one namespace with ?namespace=)"
	}
	return msg
}
