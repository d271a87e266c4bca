//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pennyhq/penny/aggregator/query"
)

// apiPKI is what the aggregators' API runs with in the harness: TLS with
// the certificate the chart made (the chart's defaults: its own CA, whose
// bundle it publishes for agents and peers, and the same certificate for
// the API and the Raft peers), client certificates of the test's own CA
// for the spot node's agent (CN the node, O penny:agents) and for the test
// itself (an admin, O penny:admins), and bearer tokens checked with the
// real apiserver's TokenReview and authorized by its RBAC
// (SubjectAccessReview).
type apiPKI struct {
	ca                  *ca    // the client certificates'
	certFile, keyFile   string // the aggregators' certificate, the chart's
	serverCA            string // the chart's CA bundle, which clients trust
	adminCert, adminKey string
	agents              map[string][2]string // node: certificate and key
	client              *http.Client         // the admin's
}

// chartTLS writes the chart's certificate for the aggregators (Secret
// <release>-aggregator-tls) and its CA bundle (ConfigMap <release>-ca) to
// files, as their volumes would hold them.
func (c *cluster) chartTLS(t *testing.T) (certFile, keyFile, caFile string) {
	t.Helper()
	ctx := context.Background()
	s, err := c.cp.Client.CoreV1().Secrets(namespace).Get(ctx, release+"-aggregator-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's aggregator certificate: %v", err)
	}
	cm, err := c.cp.Client.CoreV1().ConfigMaps(namespace).Get(ctx, release+"-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's CA bundle: %v", err)
	}
	return c.cp.writeFile(t, "aggregator.crt", s.Data[corev1.TLSCertKey]), c.cp.writeFile(t, "aggregator.key", s.Data[corev1.TLSPrivateKeyKey]),
		c.cp.writeFile(t, "penny-ca.crt", []byte(cm.Data["ca.crt"]))
}

func (c *cluster) newAPIPKI(t *testing.T, nodes ...string) *apiPKI {
	t.Helper()
	p := &apiPKI{ca: newCA(t, c.dir, "penny-api-clients"), agents: map[string][2]string{}}
	p.certFile, p.keyFile, p.serverCA = c.chartTLS(t)
	p.adminCert, p.adminKey = p.ca.issue(t, "penny-admin", "e2e-admin", []string{"penny:admins"}, false)
	for _, n := range nodes {
		cert, key := p.ca.issue(t, "penny-agent-"+n, n, []string{"penny:agents"}, false)
		p.agents[n] = [2]string{cert, key}
	}
	kp, err := tls.LoadX509KeyPair(p.adminCert, p.adminKey)
	if err != nil {
		t.Fatal(err)
	}
	p.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.roots(t), Certificates: []tls.Certificate{kp}}}}
	return p
}

// roots are the CAs a client of the API trusts: the chart's bundle.
func (p *apiPKI) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(p.serverCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", p.serverCA)
	}
	return pool
}

// apiURL is a replica's API.
func apiURL(h *testHost) string { return "https://" + h.IP + ":7379" }

// aggregatorAccessArgs are the flags of the aggregators' API and peers as
// the chart's defaults give them: TLS with the chart's certificate for
// both, peers that must present a certificate of the chart's CA,
// TokenReview and SubjectAccessReview through kubeconfig, the chart's
// agent ServiceAccount; and, the harness's own, the client CA of the
// test's admin and spot agent.
func (p *apiPKI) aggregatorAccessArgs(kubeconfig string) []string {
	return []string{"--cert-file", p.certFile, "--key-file", p.keyFile, "--api-client-ca-file", p.ca.File,
		"--peer-cert-file", p.certFile, "--peer-key-file", p.keyFile, "--peer-trusted-ca-file", p.serverCA, "--peer-client-cert-auth",
		"--authentication-token-webhook", "--auth-kubeconfig", kubeconfig,
		"--agent-service-account", namespace + "/" + release + "-agent", "--authorization-mode", "Webhook"}
}

// agentArgs are an agent's flags to reach the API as the agent of node.
func (p *apiPKI) agentArgs(node string) []string {
	kp := p.agents[node]
	return []string{"--ca-file", p.serverCA, "--cert-file", kp[0], "--key-file", kp[1], "--token-file", "none"}
}

// adminArgs are the flags of penny cost and penny top as the admin.
func (p *apiPKI) adminArgs() []string {
	return []string{"--ca-file", p.serverCA, "--cert-file", p.adminCert, "--key-file", p.adminKey}
}

// getBody GETs url as the admin and returns the body of a 200.
func (c *cluster) getBody(url string) ([]byte, error) {
	return getAs(c.pki.client, url, "")
}

func (c *cluster) getJSON(url string, v any) error {
	b, err := c.getBody(url)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// getAs GETs url with hc, with a bearer token when one is given; an answer
// other than 200 is an error that carries its status.
func getAs(hc *http.Client, url, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, &statusError{url: url, code: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	return b, nil
}

type statusError struct {
	url  string
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %d: %s", e.url, e.code, e.body) }

// checkReaders is issue 11's reader test on the real apiserver: a
// ServiceAccount that RBAC lets read Penny's pods in one namespace reads
// that namespace on every replica, and gets 403 for another namespace and
// for a read of every namespace; without credentials a read is a 401, and
// a token of another audience or a forged one is refused too.
func (c *cluster) checkReaders(t *testing.T, allowed, other string) {
	t.Helper()
	c.kubectl(t, "create", "serviceaccount", "e2e-reader", "--namespace", allowed)
	// kubectl create clusterrole checks resources against discovery, and
	// penny.dev's are virtual: the role as a manifest.
	c.kubectl(t, "apply", "-f", c.cp.writeFile(t, "penny-pod-reader.yaml", []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-penny-pod-reader
rules:
  - apiGroups: ["penny.dev"]
    resources: ["pods"]
    verbs: ["get", "list"]
`)))
	c.kubectl(t, "create", "rolebinding", "e2e-reader", "--namespace", allowed, "--clusterrole=e2e-penny-pod-reader",
		"--serviceaccount="+allowed+":e2e-reader")
	token := strings.TrimSpace(c.kubectl(t, "create", "token", "e2e-reader", "--namespace", allowed, "--duration", "1h"))
	anon := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.pki.roots(t)}}}
	for _, h := range c.hosts {
		base := apiURL(h) + "/v1/pods?consistency=linearizable"
		// RBAC answers through SubjectAccessReview, cached for seconds:
		// the binding was just made, so wait for the first yes.
		c.kubelet.wait(t, 30*time.Second, "the reader's pods of "+allowed+" from "+h.IP, func() error {
			b, err := getAs(anon, base+"&namespace="+allowed, token)
			if err != nil {
				return err
			}
			var pods query.Pods
			if err := json.Unmarshal(b, &pods); err != nil {
				return err
			}
			if len(pods.Pods) == 0 {
				return fmt.Errorf("no pods of %s: %s", allowed, b)
			}
			for _, p := range pods.Pods {
				if p.Namespace != allowed {
					return fmt.Errorf("a pod of %s in the answer for %s", p.Namespace, allowed)
				}
			}
			return nil
		})
		for _, tc := range []struct {
			url, token string
			want       int
		}{
			{base + "&namespace=" + other, token, http.StatusForbidden},
			{base, token, http.StatusForbidden},
			{apiURL(h) + "/v1/containers", token, http.StatusForbidden},
			{apiURL(h) + "/v1/kv?prefix=", token, http.StatusForbidden},
			{base + "&namespace=" + allowed, "", http.StatusUnauthorized},
			{base + "&namespace=" + allowed, token + "x", http.StatusUnauthorized},
		} {
			_, err := getAs(anon, tc.url, tc.token)
			se, ok := err.(*statusError)
			if !ok || se.code != tc.want {
				t.Errorf("GET %s with token %v: %v, want %d", tc.url, tc.token != "", err, tc.want)
				continue
			}
			var body struct{ Error string }
			if json.Unmarshal([]byte(se.body), &body) != nil || body.Error == "" {
				t.Errorf("GET %s: %d without a JSON error: %q", tc.url, se.code, se.body)
			}
		}
	}
	t.Logf("a ServiceAccount bound to penny.dev pods in %s reads them and gets 403 for %s", allowed, other)
}
