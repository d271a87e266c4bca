package apiget

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/ok":
			_, _ = w.Write([]byte(`{"q":"` + r.URL.Query().Get("q") + `"}`))
		case "/v1/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 2<<20)))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"not yours"}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	tests := []struct {
		name, path string
		status     int
		body, err  string
	}{
		{"ok, with the parameters", "/v1/ok", http.StatusOK, `{"q":"a b"}`, ""},
		{"an error answer is an answer", "/v1/denied", http.StatusForbidden, `{"error":"not yours"}`, ""},
		{"over the bound", "/v1/big", 0, "", "an answer of more than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Get(ctx, nil, srv.URL+"/", tt.path, url.Values{"q": {"a b"}}, 1<<20)
			if tt.err != "" {
				if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || a.StatusCode != tt.status || string(a.Body) != tt.body {
				t.Fatalf("%+v, %v", a, err)
			}
		})
	}
	if _, err := Get(ctx, nil, "http://127.0.0.1:1", "/v1/ok", nil, 1<<20); err == nil ||
		!strings.Contains(err.Error(), "is an aggregator serving http://127.0.0.1:1?") {
		t.Errorf("no server: %v", err)
	}
}

func TestErrorMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"forbidden"}`: "forbidden",
		" plain text\n":         "plain text",
		`{"message":"x"}`:       `{"message":"x"}`,
	} {
		if got := ErrorMessage([]byte(body)); got != want {
			t.Errorf("ErrorMessage(%q) = %q, want %q", body, got, want)
		}
	}
}
