// Package bearer sends a bearer token read from a file, as Penny's clients
// do (the agent, penny top, penny cost): the file is read again when it
// changes, as kubelet rotates a projected ServiceAccount token.
package bearer

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// ServiceAccountTokenPath is where Kubernetes mounts a pod's
// ServiceAccount token.
const ServiceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// checkEvery is how often a File looks whether its file changed, at most.
const checkEvery = time.Second

// maxTokenBytes bounds a token file.
const maxTokenBytes = 64 << 10

// File is a token in a file.
type File struct {
	path string

	mu      sync.Mutex
	token   string
	size    int64
	modTime time.Time
	checked time.Time
}

// NewFile reads the token in path; an empty or unreadable file is an
// error.
func NewFile(path string) (*File, error) {
	f := &File{path: path}
	if err := f.reload(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Token returns the token, read again if the file changed (checked at
// most once a second). If the file cannot be read now, the last token
// read is returned with the error.
func (f *File) Token() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.checked) < checkEvery {
		return f.token, nil
	}
	err := f.reloadLocked(now)
	return f.token, err
}

func (f *File) reload(now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloadLocked(now)
}

func (f *File) reloadLocked(now time.Time) error {
	f.checked = now
	fi, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if f.token != "" && fi.Size() == f.size && fi.ModTime().Equal(f.modTime) {
		return nil
	}
	if fi.Size() > maxTokenBytes {
		return fmt.Errorf("token file %s: larger than %d bytes", f.path, maxTokenBytes)
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return errors.New("token file " + f.path + ": want one token")
	}
	f.token, f.size, f.modTime = tok, fi.Size(), fi.ModTime()
	return nil
}

// Transport adds the token of Source to every request that has no
// Authorization header.
type Transport struct {
	Base   http.RoundTripper // nil: http.DefaultTransport
	Source *File
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if r.Header.Get("Authorization") != "" {
		return base.RoundTrip(r)
	}
	tok, err := t.Source.Token()
	if tok == "" {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return base.RoundTrip(r)
}
