package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/internal/tlsfiles/tlstest"
)

// TestAgentOverTLS runs `penny aggregator` with an API certificate and a
// client CA, and `penny agent` with its CA and client certificate: the
// agent's samples arrive over HTTPS, and reads work over HTTPS.
func TestAgentOverTLS(t *testing.T) {
	cgtest.RequireRoot(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	sc, sk := ca.Server(t, "aggregator")
	cc, ck := ca.Client(t, "agent")
	c := newProcCluster(t, 1, "--cert-file", sc, "--key-file", sk, "--api-client-ca-file", ca.File)
	api := "https://" + c.replicas[0].api
	startAgent(t, c.bin, []string{api}, "tls-node", "--ca-file", ca.File, "--cert-file", cc, "--key-file", ck)

	tc, err := tlsfiles.Client(tlsfiles.Files{CAFile: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	eventually(t, "the agent's root cgroup readable over https", 30*time.Second, func() error {
		resp, err := hc.Get(api + "/v1/containers?node=tls-node")
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
}
