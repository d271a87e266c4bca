package bearer

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileRereadsWhenItChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := f.Token(); tok != "first" || err != nil {
		t.Fatalf("Token() = %q, %v", tok, err)
	}
	if err := os.WriteFile(path, []byte("second-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.checked = time.Time{} // as if a second passed
	f.mu.Unlock()
	if tok, err := f.Token(); tok != "second-token" || err != nil {
		t.Fatalf("Token() after a rotation = %q, %v", tok, err)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "\n", "two": "a b"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewFile(p); err == nil {
			t.Errorf("%s token file taken", name)
		}
	}
	if _, err := NewFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing token file taken")
	}
}

func TestTransportSendsTheToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	defer srv.Close()
	c := &http.Client{Transport: &Transport{Source: f}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "Bearer tok" {
		t.Fatalf("Authorization %q", got)
	}
}
