package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"

	"github.com/pennyhq/penny/internal/lru"
)

// TokenReviewConfig configures the TokenReview authenticator.
type TokenReviewConfig struct {
	// Client creates TokenReviews (kubernetes.Interface's
	// AuthenticationV1().TokenReviews()).
	Client authnclient.TokenReviewInterface
	// Audiences the tokens must be meant for; empty: the API server's.
	Audiences []string
	// AgentServiceAccounts are the service accounts of the agents,
	// NAMESPACE/NAME: a token of one of them, bound to a pod, is the agent
	// of the pod's node.
	AgentServiceAccounts []string
	// CacheTTL is how long an answer is reused (10s); refusals are reused
	// half as long. CacheSize bounds the answers kept (10000).
	CacheTTL  time.Duration
	CacheSize int
	// Timeout bounds one review (5s).
	Timeout time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *TokenReviewConfig) Complete() {
	if c.CacheTTL == 0 {
		c.CacheTTL = 10 * time.Second
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks a completed config.
func (c *TokenReviewConfig) Validate() error {
	if c.Client == nil {
		return errors.New("authn: token review without a kubernetes client")
	}
	if c.CacheTTL < 0 || c.CacheSize < 1 || c.Timeout <= 0 {
		return errors.New("authn: token review cache ttl, size and timeout out of range")
	}
	for _, sa := range c.AgentServiceAccounts {
		if ns, name, ok := strings.Cut(sa, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("authn: agent service account %q is not NAMESPACE/NAME", sa)
		}
	}
	return nil
}

// TokenReview authenticates bearer tokens by asking Kubernetes
// (authentication.k8s.io/v1 TokenReview), and remembers the answers for a
// short while, keyed by the token's SHA-256.
type TokenReview struct {
	cfg    TokenReviewConfig
	agents map[string]bool // system:serviceaccount:NS:NAME

	cache     *lru.Cache[[32]byte, *reviewed]
	cacheHits *prometheus.CounterVec
}

type reviewed struct {
	id      *Identity
	err     error
	expires time.Time
}

// NewTokenReview returns a TokenReview authenticator.
func NewTokenReview(cfg TokenReviewConfig) (*TokenReview, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &TokenReview{cfg: cfg, agents: map[string]bool{}, cache: lru.New[[32]byte, *reviewed](cfg.CacheSize),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_auth_token_reviews_total",
			Help: "Bearer tokens checked with TokenReview, by result (cached, reviewed, error)."}, []string{"result"})}
	for _, sa := range cfg.AgentServiceAccounts {
		ns, name, _ := strings.Cut(sa, "/")
		t.agents[serviceaccount.MakeUsername(ns, name)] = true
	}
	return t, nil
}

// Authenticate implements Authenticator.
func (t *TokenReview) Authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	tok := bearerToken(r)
	if tok == "" {
		return nil, ErrNoCredentials
	}
	key := sha256.Sum256([]byte(tok))
	now := t.cfg.Now()
	if id, err, ok := t.cached(key, now); ok {
		t.cacheHits.WithLabelValues("cached").Inc()
		return id, err
	}
	id, err := t.review(ctx, tok)
	if errors.Is(err, ErrUnavailable) {
		t.cacheHits.WithLabelValues("error").Inc()
		return nil, err // not cached: try again next time
	}
	t.cacheHits.WithLabelValues("reviewed").Inc()
	ttl := t.cfg.CacheTTL
	if err != nil {
		ttl /= 2
	}
	t.store(key, id, err, now.Add(ttl))
	return id, err
}

func (t *TokenReview) cached(key [32]byte, now time.Time) (*Identity, error, bool) {
	rv, ok := t.cache.Get(key)
	if !ok {
		return nil, nil, false
	}
	if !now.Before(rv.expires) {
		t.cache.Remove(key)
		return nil, nil, false
	}
	return rv.id, rv.err, true
}

func (t *TokenReview) store(key [32]byte, id *Identity, err error, expires time.Time) {
	t.cache.Add(key, &reviewed{id: id, err: err, expires: expires})
}

func (t *TokenReview) review(ctx context.Context, tok string) (*Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	tr, err := t.cfg.Client.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tok, Audiences: t.cfg.Audiences}},
		metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: token review: %w", ErrUnavailable, err)
	}
	st := tr.Status
	if !st.Authenticated {
		return nil, fmt.Errorf("%w: token review: %s", ErrInvalid, st.Error)
	}
	if len(t.cfg.Audiences) > 0 && !slices.ContainsFunc(st.Audiences, func(a string) bool { return slices.Contains(t.cfg.Audiences, a) }) {
		return nil, fmt.Errorf("%w: token not meant for audiences %v", ErrInvalid, t.cfg.Audiences)
	}
	return t.identity(st.User), nil
}

// identity maps a reviewed user to an identity. Only a token of an agent
// service account bound to a pod on a node is an agent: the penny:agents
// group means nothing from anywhere else.
func (t *TokenReview) identity(u authnv1.UserInfo) *Identity {
	id := &Identity{Name: u.Username, UID: u.UID, Groups: slices.Clone(u.Groups)}
	if len(u.Extra) > 0 {
		id.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			id.Extra[k] = slices.Clone([]string(v))
		}
	}
	notAgent(id)
	if t.agents[u.Username] {
		pod, node := u.Extra[serviceaccount.PodNameKey], u.Extra[serviceaccount.NodeNameKey]
		if len(pod) == 1 && len(node) == 1 && node[0] != "" {
			agent(id, node[0])
		}
	}
	return id
}
