package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// Errors of authenticators, from the mildest to the most severe; the
// Union answers with the most severe one when no authenticator knows the
// request.
var (
	// ErrNoCredentials means the request carries no credentials this
	// authenticator reads.
	ErrNoCredentials = errors.New("authn: no credentials")
	// ErrInvalid means the credentials are wrong: unknown, expired,
	// revoked.
	ErrInvalid = errors.New("authn: invalid credentials")
	// ErrUnavailable means the credentials could not be checked now (the
	// Kubernetes API did not answer): the client should retry.
	ErrUnavailable = errors.New("authn: cannot check credentials now")
)

// Authenticator finds the identity of a request.
type Authenticator interface {
	// Authenticate returns the request's identity, or an error that wraps
	// ErrNoCredentials, ErrInvalid or ErrUnavailable.
	Authenticate(ctx context.Context, r *http.Request) (*Identity, error)
}

// Union tries its authenticators in order and takes the first identity
// one finds.
type Union []Authenticator

// Authenticate implements Authenticator.
func (u Union) Authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	var worst error
	for _, a := range u {
		id, err := a.Authenticate(ctx, r)
		if err == nil {
			return id, nil
		}
		if severity(err) > severity(worst) {
			worst = err
		}
	}
	if worst == nil {
		worst = ErrNoCredentials
	}
	return nil, worst
}

func severity(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNoCredentials):
		return 1
	case errors.Is(err, ErrInvalid):
		return 2
	}
	return 3
}

// bearerToken returns the request's bearer token, or "".
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// Config turns the authenticators on.
type Config struct {
	// ClientCertificates authenticates clients by the certificates the
	// server's TLS verified against its client CA.
	ClientCertificates bool
	// TokenFile is a token file (token,user,uid,"group1,group2" per line).
	TokenFile string
	// TokenReview, when set, asks Kubernetes about the other bearer
	// tokens.
	TokenReview *TokenReviewConfig
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Enabled reports whether any authenticator is on.
func (c *Config) Enabled() bool {
	return c.ClientCertificates || c.TokenFile != "" || c.TokenReview != nil
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TokenReview != nil {
		c.TokenReview.Complete()
	}
}

// Validate checks a completed config.
func (c *Config) Validate() error {
	if c.TokenReview != nil {
		return c.TokenReview.Validate()
	}
	return nil
}

// New returns the union of the authenticators cfg turns on, or nil when
// none is.
func New(cfg Config) (Authenticator, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var u Union
	if cfg.ClientCertificates {
		u = append(u, ClientCerts{})
	}
	if cfg.TokenFile != "" {
		tf, err := NewTokenFile(cfg.TokenFile, cfg.Logger)
		if err != nil {
			return nil, err
		}
		u = append(u, tf)
	}
	if cfg.TokenReview != nil {
		tr, err := NewTokenReview(*cfg.TokenReview)
		if err != nil {
			return nil, err
		}
		if cfg.Registerer != nil {
			cfg.Registerer.MustRegister(tr.cacheHits)
		}
		u = append(u, tr)
	}
	if len(u) == 0 {
		return nil, nil
	}
	return u, nil
}

// KubeClient returns a client of the Kubernetes API that kubeconfig
// names, or of the cluster the process runs in when kubeconfig is empty.
func KubeClient(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	rc.QPS, rc.Burst = 100, 200
	// Reviews are small and cached: JSON, which every API server and
	// stand-in speaks, costs nothing that matters.
	rc.ContentType, rc.AcceptContentTypes = "application/json", "application/json"
	rc.UserAgent = "penny-aggregator"
	return kubernetes.NewForConfig(rc)
}

// Middleware authenticates every request but those open says are open
// (probes, metrics), puts the identity into the request's context and
// answers 401 (503 when credentials cannot be checked now) to the others.
type Middleware struct {
	// OnRefuse, when set, is told about every refused request (the audit
	// log, the rate limit of failures).
	OnRefuse func(r *http.Request, status int)
	// Throttled, when set, is asked before authenticating: a request it
	// says true of is answered 429 without asking any authenticator (a
	// client address that failed too often: a token guesser, or one that
	// would make every guess a TokenReview).
	Throttled func(w http.ResponseWriter, r *http.Request) bool

	auth   Authenticator
	open   func(*http.Request) bool
	log    *slog.Logger
	denied *prometheus.CounterVec
}

// NewMiddleware returns the authentication middleware of a; open may be
// nil.
func NewMiddleware(a Authenticator, open func(*http.Request) bool, log *slog.Logger, reg prometheus.Registerer) *Middleware {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Middleware{auth: a, open: open, log: log,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_auth_denied_total",
			Help: "Requests refused by authentication, by reason (no_credentials, invalid, unavailable)."}, []string{"reason"})}
	for _, r := range []string{"no_credentials", "invalid", "unavailable"} {
		m.denied.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.denied)
	}
	return m
}

// Wrap returns next behind authentication.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.open != nil && m.open(r) {
			next.ServeHTTP(w, r)
			return
		}
		if m.Throttled != nil && m.Throttled(w, r) {
			return
		}
		id, err := m.auth.Authenticate(r.Context(), r)
		if err != nil {
			m.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, err error) {
	status, reason := http.StatusUnauthorized, "invalid"
	msg := "invalid credentials"
	switch {
	case errors.Is(err, ErrNoCredentials):
		reason, msg = "no_credentials", "authentication required: a bearer token or a client certificate"
	case errors.Is(err, ErrInvalid):
	default:
		status, reason, msg = http.StatusServiceUnavailable, "unavailable", "cannot check credentials now"
		w.Header().Set("Retry-After", "1")
		m.log.Warn("authentication unavailable", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	}
	m.denied.WithLabelValues(reason).Inc()
	if m.OnRefuse != nil {
		m.OnRefuse(r, status)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="penny"`)
		m.log.Debug("authentication refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	}
	kvhttp.WriteJSON(w, status, map[string]string{"error": msg})
}
