package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pennyhq/penny/internal/tlsfiles"
)

func TestAPIClientSendsTheTokenFile(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	defer srv.Close()
	dir := t.TempDir()
	flagFile, envFile := filepath.Join(dir, "flag"), filepath.Join(dir, "env")
	for f, tok := range map[string]string{flagFile: "from-flag\n", envFile: "from-env"} {
		if err := os.WriteFile(f, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(tokenFileEnv, envFile)
	for _, tc := range []struct{ file, want string }{{flagFile, "Bearer from-flag"}, {"", "Bearer from-env"}} {
		hc, err := apiClient(tlsfiles.Files{}, tc.file)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got != tc.want {
			t.Errorf("--token-file %q: Authorization %q, want %q", tc.file, got, tc.want)
		}
	}
	if _, err := apiClient(tlsfiles.Files{}, filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing token file taken")
	}
}
