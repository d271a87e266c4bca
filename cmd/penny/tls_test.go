package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/internal/tlsfiles/tlstest"
)

// TestAgentOverTLS runs `penny aggregator` with an API certificate, a
// client CA, a token file and a policy file, and `penny agent` with its CA
// and the client certificate of its node (O=penny:agents): the agent's
// samples arrive over HTTPS, and a reader the policy lets read the cluster
// reads them with its bearer token; without one it gets 401.
func TestAgentOverTLS(t *testing.T) {
	cgtest.RequireRoot(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	sc, sk := ca.Server(t, "aggregator")
	cc, ck := ca.ClientInGroups(t, "tls-node", authn.GroupAgents)
	tokens, policy := filepath.Join(dir, "tokens.csv"), filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(tokens, []byte("viewer-token,viewer,1,ops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte("rules:\n- groups: [ops]\n  cluster: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(t, 1, "--cert-file", sc, "--key-file", sk, "--api-client-ca-file", ca.File,
		"--token-auth-file", tokens, "--authorization-policy-file", policy)
	api := "https://" + c.replicas[0].api
	startAgent(t, c.bin, []string{api}, "tls-node", "--ca-file", ca.File, "--cert-file", cc, "--key-file", ck)

	tc, err := tlsfiles.Client(tlsfiles.Files{CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	eventually(t, "the agent's root cgroup readable over https", 30*time.Second, func() error {
		req, err := http.NewRequest(http.MethodGet, api+"/v1/containers?node=tls-node", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer viewer-token")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var doc struct {
			Containers []container `json:"containers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return fmt.Errorf("%s: %w", resp.Status, err)
		}
		for _, c := range doc.Containers {
			if c.Path == "/" && c.RSSBytes > 0 {
				return nil
			}
		}
		return fmt.Errorf("%s: no root cgroup in %d containers", resp.Status, len(doc.Containers))
	})
	if resp, err := hc.Get(api + "/v1/containers?node=tls-node"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("read without a token: %s, want 401", resp.Status)
	}
}
