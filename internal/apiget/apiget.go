package apiget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrTooLarge means an answer was larger than the caller's bound.
var ErrTooLarge = errors.New("apiget: answer too large")

// Answer is an aggregator's answer: its status and its body.
type Answer struct {
	StatusCode int
	Status     string
	Body       []byte
}

// Get sends GET base+path?params with hc (http.DefaultClient when nil)
// and reads the answer's body, at most maxBody bytes: a larger answer is
// ErrTooLarge.
func Get(ctx context.Context, hc *http.Client, base, path string, params url.Values, maxBody int64) (*Answer, error) {
	u := strings.TrimSuffix(base, "/") + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s (is an aggregator serving %s?): %w", path, base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("%w: %s: an answer of more than %d MiB", ErrTooLarge, path, maxBody>>20)
	}
	return &Answer{StatusCode: resp.StatusCode, Status: resp.Status, Body: body}, nil
}

// ErrorMessage is the message of an error answer: its JSON "error", or
// the body itself.
func ErrorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}
