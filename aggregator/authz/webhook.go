package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/internal/lru"
)

// WebhookConfig configures the Webhook authorizer.
type WebhookConfig struct {
	// Client creates SubjectAccessReviews (kubernetes.Interface's
	// AuthorizationV1().SubjectAccessReviews()).
	Client authzclient.SubjectAccessReviewInterface
	// AllowTTL and DenyTTL are how long answers are reused (10s, 5s);
	// CacheSize bounds the answers kept (10000).
	AllowTTL, DenyTTL time.Duration
	CacheSize         int
	// Timeout bounds one review (5s).
	Timeout time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *WebhookConfig) Complete() {
	if c.AllowTTL == 0 {
		c.AllowTTL = 10 * time.Second
	}
	if c.DenyTTL == 0 {
		c.DenyTTL = 5 * time.Second
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
func (c *WebhookConfig) Validate() error {
	if c.Client == nil {
		return errors.New("authz: webhook without a kubernetes client")
	}
	if c.AllowTTL < 0 || c.DenyTTL < 0 || c.CacheSize < 1 || c.Timeout <= 0 {
		return errors.New("authz: webhook cache ttls, size and timeout out of range")
	}
	return nil
}

// Webhook asks Kubernetes: a SubjectAccessReview of the identity on the
// virtual resource (API group penny.dev), so that RBAC decides. A tenant
// scoped read is asked at cluster scope.
type Webhook struct {
	cfg   WebhookConfig
	cache *lru.Cache[string, decision]
}

type decision struct {
	err     error
	expires time.Time
}

// NewWebhook returns a Webhook authorizer.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Webhook{cfg: cfg, cache: lru.New[string, decision](cfg.CacheSize)}, nil
}

// Authorize implements Authorizer.
func (w *Webhook) Authorize(ctx context.Context, id *authn.Identity, a Attributes) error {
	if id == nil {
		return fmt.Errorf("%w: anonymous", ErrDenied)
	}
	key := cacheKey(id, a)
	now := w.cfg.Now()
	if d, ok := w.cache.Get(key); ok && now.Before(d.expires) {
		return d.err
	}
	err := w.review(ctx, id, a)
	switch {
	case err == nil:
		w.cache.Add(key, decision{expires: now.Add(w.cfg.AllowTTL)})
	case errors.Is(err, ErrDenied):
		w.cache.Add(key, decision{err: err, expires: now.Add(w.cfg.DenyTTL)})
	}
	return err
}

func (w *Webhook) review(ctx context.Context, id *authn.Identity, a Attributes) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: id.Name, UID: id.UID, Groups: id.Groups,
		ResourceAttributes: &authzv1.ResourceAttributes{Group: Group, Resource: a.Resource, Verb: a.Verb, Namespace: a.Namespace},
	}}
	if len(id.Extra) > 0 {
		sar.Spec.Extra = make(map[string]authzv1.ExtraValue, len(id.Extra))
		for k, v := range id.Extra {
			sar.Spec.Extra[k] = v
		}
	}
	res, err := w.cfg.Client.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("%w: subject access review: %w", ErrUnavailable, err)
	}
	if !res.Status.Allowed || res.Status.Denied {
		reason := res.Status.Reason
		if reason == "" {
			reason = "no RBAC rule allows it"
		}
		return fmt.Errorf("%w: %q may not %s: %s", ErrDenied, id.Name, a, reason)
	}
	return nil
}

// cacheKey names a decision: the identity (name, uid, groups, extra) and
// the attributes, each field length-prefixed so that no two differ only
// in where a separator falls.
func cacheKey(id *authn.Identity, a Attributes) string {
	b := make([]byte, 0, 128)
	add := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	for _, s := range []string{id.Name, id.UID, a.Verb, a.Resource, a.Namespace} {
		add(s)
	}
	b = strconv.AppendInt(append(b, 'g'), int64(len(id.Groups)), 10)
	for _, g := range id.Groups {
		add(g)
	}
	if len(id.Extra) > 0 {
		keys := make([]string, 0, len(id.Extra))
		for k := range id.Extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			add(k)
			b = strconv.AppendInt(append(b, 'v'), int64(len(id.Extra[k])), 10)
			for _, v := range id.Extra[k] {
				add(v)
			}
		}
	}
	return string(b)
}
