package authn

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeReviews answers TokenReviews from users, by token, and counts them.
func fakeReviews(users map[string]authnv1.UserInfo, fail *atomic.Bool) (*fake.Clientset, *atomic.Int32) {
	cs := fake.NewClientset()
	var n atomic.Int32
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n.Add(1)
		if fail != nil && fail.Load() {
			return true, nil, errors.New("connection refused")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview).DeepCopy()
		u, ok := users[tr.Spec.Token]
		tr.Status = authnv1.TokenReviewStatus{Authenticated: ok, User: u, Audiences: tr.Spec.Audiences}
		if !ok {
			tr.Status.Error = "unknown token"
		}
		return true, tr, nil
	})
	return cs, &n
}

func saUser(ns, name, node string) authnv1.UserInfo {
	u := authnv1.UserInfo{Username: serviceaccount.MakeUsername(ns, name), UID: "sa-uid",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	if node != "" {
		u.Extra = map[string]authnv1.ExtraValue{serviceaccount.PodNameKey: {"agent-x"}, serviceaccount.NodeNameKey: {node}}
	}
	return u
}

func TestTokenReview(t *testing.T) {
	users := map[string]authnv1.UserInfo{
		"agent-on-n1":   saUser("penny", "penny-agent", "n1"),
		"agent-unbound": saUser("penny", "penny-agent", ""),
		"other-sa":      saUser("shop", "web", "n1"),
		"claims-agent":  {Username: "mallory", Groups: []string{GroupAgents}},
		"admin":         {Username: "root", Groups: []string{GroupAdmins}},
	}
	cs, calls := fakeReviews(users, nil)
	now := time.Unix(1000, 0)
	tr, err := NewTokenReview(TokenReviewConfig{Client: cs.AuthenticationV1().TokenReviews(),
		AgentServiceAccounts: []string{"penny/penny-agent"}, Audiences: []string{"penny"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token, name, node string
		agent, admin      bool
		err               error
	}{
		{token: "", err: ErrNoCredentials},
		{token: "unknown", err: ErrInvalid},
		{token: "agent-on-n1", name: "system:serviceaccount:penny:penny-agent", node: "n1", agent: true},
		{token: "agent-unbound", name: "system:serviceaccount:penny:penny-agent"},
		{token: "other-sa", name: "system:serviceaccount:shop:web"},
		{token: "claims-agent", name: "mallory"},
		{token: "admin", name: "root", admin: true},
	} {
		id, err := tr.Authenticate(context.Background(), request(tc.token))
		if !errors.Is(err, tc.err) {
			t.Errorf("token %q: err %v, want %v", tc.token, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if id.Name != tc.name || id.Node != tc.node || id.InGroup(GroupAgents) != tc.agent || id.IsAdmin() != tc.admin {
			t.Errorf("token %q: %+v", tc.token, id)
		}
	}

	// Answers are cached, refusals too, for a while.
	before := calls.Load()
	for range 3 {
		_, _ = tr.Authenticate(context.Background(), request("agent-on-n1"))
		_, _ = tr.Authenticate(context.Background(), request("unknown"))
	}
	if calls.Load() != before {
		t.Fatalf("%d reviews for cached tokens", calls.Load()-before)
	}
	now = now.Add(11 * time.Second)
	_, _ = tr.Authenticate(context.Background(), request("agent-on-n1"))
	if calls.Load() != before+1 {
		t.Fatalf("%d reviews after the cache expired, want 1", calls.Load()-before)
	}
}

func TestTokenReviewUnavailableIsNotCached(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	cs, calls := fakeReviews(map[string]authnv1.UserInfo{"t": {Username: "u"}}, &fail)
	tr, err := NewTokenReview(TokenReviewConfig{Client: cs.AuthenticationV1().TokenReviews()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Authenticate(context.Background(), request("t")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("kube API down: %v, want ErrUnavailable", err)
	}
	fail.Store(false)
	if id, err := tr.Authenticate(context.Background(), request("t")); err != nil || id.Name != "u" {
		t.Fatalf("kube API back: %+v, %v", id, err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d reviews, want 2", calls.Load())
	}
}

func TestTokenReviewConfig(t *testing.T) {
	cs, _ := fakeReviews(nil, nil)
	for _, sa := range []string{"penny", "/a", "a/", "a/b/c"} {
		if _, err := NewTokenReview(TokenReviewConfig{Client: cs.AuthenticationV1().TokenReviews(), AgentServiceAccounts: []string{sa}}); err == nil {
			t.Errorf("agent service account %q taken", sa)
		}
	}
	if _, err := NewTokenReview(TokenReviewConfig{}); err == nil {
		t.Error("no client taken")
	}
}
