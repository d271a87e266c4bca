package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pennyhq/penny/aggregator/recommend"
)

// TestRecommendationsAuthorized: GET /v1/scaling/recommendations is a read
// of a namespace's allocation: a reader of shop gets shop's, and a 403 for
// another namespace or for all of them; an admin reads every namespace.
func TestRecommendationsAuthorized(t *testing.T) {
	s := startAuth(t, nil)
	base := "http://" + s.Addr.String()
	tests := []struct {
		token, query string
		code         int
		want         string
	}{
		{tokenShop, "?namespace=shop", http.StatusOK, `"pod_disruption_budgets":"unknown"`},
		{tokenShop, "?namespace=batch", http.StatusForbidden, "may not list penny.dev/allocations in namespace batch"},
		{tokenShop, "", http.StatusForbidden, "may not list penny.dev/allocations at cluster scope"},
		{tokenAgentA, "?namespace=shop", http.StatusForbidden, "forbidden"},
		{"", "?namespace=shop", http.StatusUnauthorized, ""},
		{tokenAdmin, "?window=24h", http.StatusOK, `"workloads":[]`},
	}
	for _, tt := range tests {
		code, body := getAs(t, base, tt.token, recommend.Path+tt.query, nil)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("token %q %s: %d %s, want %d with %q", tt.token, tt.query, code, body, tt.code, tt.want)
		}
	}
}
