package authz

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pennyhq/penny/aggregator/authn"
)

var (
	agentA  = &authn.Identity{Name: "node-a", Groups: []string{authn.GroupAgents}, Node: "node-a"}
	admin   = &authn.Identity{Name: "root", Groups: []string{authn.GroupAdmins}}
	alice   = &authn.Identity{Name: "alice"}
	teamWeb = &authn.Identity{Name: "bob", Groups: []string{"team-web"}}
	finance = &authn.Identity{Name: "carol", Groups: []string{"finance"}}
	ops     = &authn.Identity{Name: "dave", Groups: []string{"ops"}}
	nobody  = &authn.Identity{Name: "eve"}
)

const testPolicy = `
rules:
- users: [alice]
  namespaces: [shop]
- groups: [team-web]
  namespaces: [web, shop]
- groups: [finance]
  tenants: [acme]
- groups: [ops]
  cluster: true
- users: [frank]
  admin: true
`

func TestPolicyDecisions(t *testing.T) {
	p, err := ParsePolicy([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	az := Rules{Next: Policy{File: p}}
	frank := &authn.Identity{Name: "frank"}
	list := func(res, ns string) Attributes { return Attributes{Verb: List, Resource: res, Namespace: ns} }
	for _, tc := range []struct {
		name  string
		id    *authn.Identity
		a     Attributes
		allow bool
	}{
		{"anonymous", nil, list(Pods, "shop"), false},
		{"agent streams", agentA, Attributes{Verb: Create, Resource: Ingest}, true},
		{"agent reads", agentA, list(Pods, "shop"), false},
		{"agent writes the store", agentA, Attributes{Verb: Update, Resource: KV}, false},
		{"admin streams", admin, Attributes{Verb: Create, Resource: Ingest}, false},
		{"reader streams", ops, Attributes{Verb: Create, Resource: Ingest}, false},
		{"admin writes the store", admin, Attributes{Verb: Update, Resource: KV}, true},
		{"admin changes membership", admin, Attributes{Verb: Create, Resource: Members}, true},
		{"admin on an unknown path", admin, Attributes{Verb: Get}, true},
		{"reader on an unknown path", ops, Attributes{Verb: Get}, false},
		{"user, its namespace", alice, list(Pods, "shop"), true},
		{"user, its namespace's totals", alice, list(Namespaces, "shop"), true},
		{"user, its namespace's allocation", alice, list(Allocations, "shop"), true},
		{"user, another namespace", alice, list(Pods, "web"), false},
		{"user, cluster scope", alice, list(Pods, ""), false},
		{"user, containers", alice, list(Containers, ""), false},
		{"group, its namespace", teamWeb, list(Pods, "web"), true},
		{"group, another namespace", teamWeb, list(Pods, "kube-system"), false},
		{"tenant reader, its tenant", finance, Attributes{Verb: List, Resource: Allocations, Tenant: "acme"}, true},
		{"tenant reader, another tenant", finance, Attributes{Verb: List, Resource: Allocations, Tenant: "globex"}, false},
		{"tenant reader, pods", finance, list(Pods, "acme"), false},
		{"cluster reader, nodes", ops, list(Nodes, ""), true},
		{"cluster reader, every pod", ops, list(Pods, ""), true},
		{"cluster reader, the store", ops, Attributes{Verb: Get, Resource: KV}, false},
		{"cluster reader, membership", ops, Attributes{Verb: List, Resource: Members}, false},
		{"admin rule, the store", frank, Attributes{Verb: Delete, Resource: KV}, true},
		{"nobody", nobody, list(Pods, "shop"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := az.Authorize(context.Background(), tc.id, tc.a)
			if tc.allow && err != nil {
				t.Fatalf("%s: %v, want allowed", tc.a, err)
			}
			if !tc.allow && !errors.Is(err, ErrDenied) {
				t.Fatalf("%s: %v, want denied", tc.a, err)
			}
		})
	}
}

func TestEmptyPolicyAllowsOnlyTheRules(t *testing.T) {
	az := Rules{Next: Policy{}}
	if err := az.Authorize(context.Background(), admin, Attributes{Verb: Update, Resource: KV}); err != nil {
		t.Fatal(err)
	}
	if err := az.Authorize(context.Background(), ops, Attributes{Verb: List, Resource: Nodes}); !errors.Is(err, ErrDenied) {
		t.Fatal(err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for name, y := range map[string]string{
		"unknown field": "rules:\n- users: [a]\n  namespace: [x]\n",
		"no subject":    "rules:\n- namespaces: [x]\n",
		"no grant":      "rules:\n- users: [a]\n",
		"empty name":    "rules:\n- users: [\"\"]\n  cluster: true\n",
		"not yaml":      "rules: [",
	} {
		if _, err := ParsePolicy([]byte(y)); err == nil {
			t.Errorf("%s: policy taken", name)
		}
	}
	if p, err := ParsePolicy(nil); err != nil || len(p.Rules) != 0 {
		t.Errorf("empty policy: %+v, %v", p, err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(testPolicy))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		for _, r := range p.Rules {
			if len(r.Users)+len(r.Groups) == 0 {
				t.Fatalf("rule without subjects taken: %+v", r)
			}
		}
	})
}

// fakeSAR answers SubjectAccessReviews with allow and counts them.
func fakeSAR(allow func(authzv1.SubjectAccessReviewSpec) bool, fail *atomic.Bool) (*fake.Clientset, *atomic.Int32) {
	cs := fake.NewClientset()
	var n atomic.Int32
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n.Add(1)
		if fail != nil && fail.Load() {
			return true, nil, errors.New("connection refused")
		}
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		sar.Status.Allowed = allow(sar.Spec)
		return true, sar, nil
	})
	return cs, &n
}

func TestWebhook(t *testing.T) {
	// RBAC as a Role in namespace shop would say: alice may list pods.
	var seen []authzv1.SubjectAccessReviewSpec
	cs, calls := fakeSAR(func(s authzv1.SubjectAccessReviewSpec) bool {
		seen = append(seen, s)
		ra := s.ResourceAttributes
		return s.User == "alice" && ra.Group == Group && ra.Resource == Pods && ra.Verb == List && ra.Namespace == "shop"
	}, nil)
	now := time.Unix(1000, 0)
	wh, err := NewWebhook(WebhookConfig{Client: cs.AuthorizationV1().SubjectAccessReviews(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	az := Rules{Next: wh}
	ctx := context.Background()
	shop := Attributes{Verb: List, Resource: Pods, Namespace: "shop"}
	web := Attributes{Verb: List, Resource: Pods, Namespace: "web"}
	if err := az.Authorize(ctx, alice, shop); err != nil {
		t.Fatalf("alice, shop: %v", err)
	}
	if err := az.Authorize(ctx, alice, web); !errors.Is(err, ErrDenied) {
		t.Fatalf("alice, web: %v", err)
	}
	if len(seen) != 2 || seen[0].ResourceAttributes.Group != Group || seen[0].User != "alice" {
		t.Fatalf("reviews asked: %+v", seen)
	}
	// Cached: the same questions are not asked again for a while.
	_ = az.Authorize(ctx, alice, shop)
	_ = az.Authorize(ctx, alice, web)
	if calls.Load() != 2 {
		t.Fatalf("%d reviews, want 2 (cached)", calls.Load())
	}
	// Another identity with the same name but other groups is another
	// question.
	_ = az.Authorize(ctx, &authn.Identity{Name: "alice", Groups: []string{"x"}}, shop)
	if calls.Load() != 3 {
		t.Fatalf("%d reviews, want 3", calls.Load())
	}
	now = now.Add(11 * time.Second)
	_ = az.Authorize(ctx, alice, shop)
	if calls.Load() != 4 {
		t.Fatalf("%d reviews after the cache expired, want 4", calls.Load())
	}
	// Agents and admins are decided before Kubernetes is asked.
	if err := az.Authorize(ctx, agentA, Attributes{Verb: Create, Resource: Ingest}); err != nil {
		t.Fatal(err)
	}
	if err := az.Authorize(ctx, admin, Attributes{Verb: Delete, Resource: Members}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 4 {
		t.Fatalf("Kubernetes asked about agents or admins")
	}
}

func TestWebhookUnavailable(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	cs, calls := fakeSAR(func(authzv1.SubjectAccessReviewSpec) bool { return true }, &fail)
	wh, err := NewWebhook(WebhookConfig{Client: cs.AuthorizationV1().SubjectAccessReviews()})
	if err != nil {
		t.Fatal(err)
	}
	a := Attributes{Verb: List, Resource: Nodes}
	if err := wh.Authorize(context.Background(), alice, a); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("kube API down: %v", err)
	}
	fail.Store(false)
	if err := wh.Authorize(context.Background(), alice, a); err != nil {
		t.Fatalf("kube API back: %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d reviews: a failure was cached", calls.Load())
	}
}

func TestCacheKeyIsUnambiguous(t *testing.T) {
	a := cacheKey(&authn.Identity{Name: "a", Groups: []string{"b,c"}}, Attributes{Verb: List})
	b := cacheKey(&authn.Identity{Name: "a", Groups: []string{"b", "c"}}, Attributes{Verb: List})
	c := cacheKey(&authn.Identity{Name: "a:b"}, Attributes{Verb: List})
	if a == b || a == c || b == c {
		t.Fatalf("keys collide: %q %q %q", a, b, c)
	}
}
