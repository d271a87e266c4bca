package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
)

// cachedIdentity stands for an authenticator whose answer is cached: a
// map lookup by token.
type cachedIdentity map[string]*authn.Identity

func (c cachedIdentity) Authenticate(_ context.Context, r *http.Request) (*authn.Identity, error) {
	if id, ok := c[r.Header.Get("Authorization")]; ok {
		return id, nil
	}
	return nil, authn.ErrInvalid
}

// BenchmarkChain measures what the modules add to one request, the
// handler doing nothing: every module off (the handler itself) against
// every module on (authentication, audit, rate limit, a policy; or
// TokenReview and SubjectAccessReview, their answers cached).
func BenchmarkChain(b *testing.B) {
	pol, err := authz.ParsePolicy([]byte("rules:\n- users: [alice]\n  namespaces: [shop]\n"))
	if err != nil {
		b.Fatal(err)
	}
	kube := fake.NewClientset()
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}}}
		return true, tr, nil
	})
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		sar.Status.Allowed = true
		return true, sar, nil
	})
	tr, err := authn.NewTokenReview(authn.TokenReviewConfig{Client: kube.AuthenticationV1().TokenReviews(), CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	wh, err := authz.NewWebhook(authz.WebhookConfig{Client: kube.AuthorizationV1().SubjectAccessReviews(), AllowTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"off", Config{}},
		{"on", Config{Authenticator: cachedIdentity{"Bearer t": {Name: "alice"}}, Authorizer: authz.Policy{File: pol},
			RateLimit: RateLimitConfig{QPS: 1e9, Burst: 1e9}, AuditLogPath: filepath.Join(b.TempDir(), "audit")}},
		{"on-kubernetes-cached", Config{Authenticator: tr, Authorizer: wh,
			RateLimit: RateLimitConfig{QPS: 1e9, Burst: 1e9}, AuditLogPath: filepath.Join(b.TempDir(), "audit")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New(bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
			r := httptest.NewRequest(http.MethodGet, "/v1/pods?namespace=shop", nil)
			r.Header.Set("Authorization", "Bearer t")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := httptest.NewRecorder()
				for pb.Next() {
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		})
	}
}
