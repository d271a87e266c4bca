package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"

	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
	"github.com/pennyhq/penny/aggregator/custommetrics/custommetricstest"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
)

// TestKubernetesIdentities runs a replica that asks a stand-in
// kube-apiserver: TokenReview for the bearer tokens and
// SubjectAccessReview for the reads. A ServiceAccount that RBAC lets list
// penny.dev pods in namespace shop reads shop and gets 403 for web; the
// agent ServiceAccount's token bound to a pod on node-1 streams node-1
// and is refused for node-2.
func TestKubernetesIdentities(t *testing.T) {
	kube := custommetricstest.StartKubeAPI(t)
	reader := serviceaccount.MakeUsername("shop", "dashboard")
	kube.AddUserInfo("reader-token", authnv1.UserInfo{Username: reader, UID: "r",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"}})
	kube.AllowIf(reader, func(s authzv1.SubjectAccessReviewSpec) bool {
		ra := s.ResourceAttributes
		return ra != nil && ra.Group == authz.Group && ra.Resource == authz.Pods && ra.Verb == authz.List && ra.Namespace == "shop"
	})
	agentSA := serviceaccount.MakeUsername("penny", "penny-agent")
	agentUser := func(node string) authnv1.UserInfo {
		return authnv1.UserInfo{Username: agentSA, UID: "a", Groups: []string{"system:serviceaccounts", "system:authenticated"},
			Extra: map[string]authnv1.ExtraValue{serviceaccount.PodNameKey: {"penny-agent-x"}, serviceaccount.NodeNameKey: {node}}}
	}
	kube.AddUserInfo("agent-node-1", agentUser("node-1"))
	kube.AddUserInfo("agent-node-2", agentUser("node-2"))
	kube.AllowIf(agentSA, func(authzv1.SubjectAccessReviewSpec) bool { return true }) // RBAC cannot make an agent read
	kube.AddUserInfo("admin-token", authnv1.UserInfo{Username: "kubernetes-admin", Groups: []string{"system:masters", authn.GroupAdmins}})

	kc, err := authn.KubeClient(kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := authn.NewTokenReview(authn.TokenReviewConfig{Client: kc.AuthenticationV1().TokenReviews(),
		AgentServiceAccounts: []string{"penny/penny-agent"}})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := authz.NewWebhook(authz.WebhookConfig{Client: kc.AuthorizationV1().SubjectAccessReviews()})
	if err != nil {
		t.Fatal(err)
	}
	s := startAuth(t, func(c *server.Config) { c.Access = access.Config{Authenticator: tr, Authorizer: wh} })
	base := "http://" + s.Addr.String()
	t0 := time.Now().Truncate(time.Second)

	shop := shipAs(t, base, "agent-node-1", "node-1", podSnapshot(t0, "shop", "web-0", 1<<20))
	shipAs(t, base, "agent-node-1", "node-2", podSnapshot(t0, "web", "forged", 64<<30))
	waitFor(t, "node-1's frame acknowledged", func() bool { return testutil.ToFloat64(acked(shop)) == 1 })
	waitFor(t, "the frame for node-2 refused", func() bool {
		return metric(t, base, `penny_ingest_frames_rejected_total{reason="node_mismatch"}`) >= 1
	})

	var pods query.Pods
	if code, body := getAs(t, base, "reader-token", "/v1/pods?namespace=shop&consistency=linearizable", &pods); code != http.StatusOK {
		t.Fatalf("the ServiceAccount reads its namespace: %d %s", code, body)
	}
	if len(pods.Pods) != 1 || pods.Pods[0].Name != "web-0" {
		t.Fatalf("pods of shop: %+v", pods.Pods)
	}
	for _, p := range []string{"/v1/pods?namespace=web", "/v1/pods", "/v1/containers", "/v1/kv"} {
		if code, body := getAs(t, base, "reader-token", p, nil); code != http.StatusForbidden {
			t.Errorf("the ServiceAccount reads %s: %d %s, want 403", p, code, body)
		}
	}
	if code, _ := getAs(t, base, "agent-node-2", "/v1/pods?namespace=shop", nil); code != http.StatusForbidden {
		t.Errorf("an agent reads pods: %d, want 403", code)
	}
	if code, _ := getAs(t, base, "unknown-token", "/v1/pods?namespace=shop", nil); code != http.StatusUnauthorized {
		t.Errorf("an unknown token: %d, want 401", code)
	}
	var all query.Pods
	if code, body := getAs(t, base, "admin-token", "/v1/pods?consistency=linearizable", &all); code != http.StatusOK || len(all.Pods) != 1 {
		t.Fatalf("admin reads every pod: %d %s", code, body)
	}
	if u := kube.Unexpected(); len(u) > 0 {
		t.Errorf("unexpected requests to the kube API: %v", u)
	}
	for _, r := range kube.Reviews() {
		if r.User == agentSA {
			t.Errorf("Kubernetes was asked about an agent: %+v", r)
		}
	}
}
