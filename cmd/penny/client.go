//go:build !agentonly

package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/pennyhq/penny/internal/bearer"
	"github.com/pennyhq/penny/internal/tlsfiles"
)

// tokenFileEnv names the token file of penny top and penny cost when
// --token-file is not given.
const tokenFileEnv = "PENNY_TOKEN_FILE"

// tokenFileUsage is the help of --token-file of the API's clients.
const tokenFileUsage = "send the bearer token in this `file` to the aggregator (default $" + tokenFileEnv + ")"

// apiClient is the HTTP client of penny top and penny cost: TLS from the
// files, and the bearer token in tokenFile ($PENNY_TOKEN_FILE when empty).
func apiClient(tf tlsfiles.Files, tokenFile string) (*http.Client, error) {
	var rt http.RoundTripper = http.DefaultTransport
	if tf.Enabled() {
		tc, err := tlsfiles.Client(tf)
		if err != nil {
			return nil, fmt.Errorf("--ca-file, --cert-file, --key-file: %w", err)
		}
		rt = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	if tokenFile == "" {
		tokenFile = os.Getenv(tokenFileEnv)
	}
	if tokenFile != "" {
		f, err := bearer.NewFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		rt = &bearer.Transport{Base: rt, Source: f}
	}
	return &http.Client{Transport: rt}, nil
}
