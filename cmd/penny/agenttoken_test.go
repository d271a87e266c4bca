package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestAgentTokenFile(t *testing.T) {
	dir := t.TempDir()
	mounted := filepath.Join(dir, "token")
	if err := os.WriteFile(mounted, []byte("sa-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, path string
		args             []string
		want             string
	}{
		{"outside a cluster", "", mounted, nil, ""},
		{"in a pod with the token mounted", "10.0.0.1", mounted, nil, mounted},
		{"in a pod without it", "10.0.0.1", filepath.Join(dir, "missing"), nil, ""},
		{"given", "", mounted, []string{"--token-file", "/etc/penny/token"}, "/etc/penny/token"},
		{"none", "10.0.0.1", mounted, []string{"--token-file", "none"}, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", tc.host)
			old := serviceAccountTokenPath
			serviceAccountTokenPath = tc.path
			t.Cleanup(func() { serviceAccountTokenPath = old })
			c, err := parseAgentFlags(append([]string{"--aggregator", "http://a:1", "--kubernetes", "off"}, tc.args...), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.TokenFile != tc.want {
				t.Fatalf("token file %q, want %q", c.TokenFile, tc.want)
			}
		})
	}
}
