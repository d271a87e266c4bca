package kvhttp

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// Media types of request bodies.
const (
	// MediaJSON is the type of batch, txn and membership bodies.
	MediaJSON = "application/json"
	// MediaValue is the type of a PUT's raw value.
	MediaValue = "application/octet-stream"
)

// What a browser may send cross-origin without asking first (CORS "simple"
// requests) is refused by type before anything is read: a mutating request
// must carry the type its route takes, which a page can only send after a
// preflight this API never approves. A request with an Origin header (a
// browser's) may mutate only with a JSON body.

// mutation checks a mutating request's Content-Type (want, or none for a
// route without a body) and Origin; it answers and returns false when the
// request is refused.
func (h *handler) mutation(w http.ResponseWriter, r *http.Request, want string) bool {
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			h.refuse(w, http.StatusUnsupportedMediaType, fmt.Sprintf("unreadable Content-Type %q", ct))
			return false
		}
	}
	switch {
	case want != "" && mt != want:
		got := "none"
		if ct != "" {
			got = fmt.Sprintf("%q", ct)
		}
		h.refuse(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s takes Content-Type %s, not %s", r.Method, routeName(r), want, got))
		return false
	case want == "" && ct != "" && mt != MediaJSON:
		h.refuse(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s takes no body, not one of type %q", r.Method, routeName(r), ct))
		return false
	}
	if _, browser := r.Header["Origin"]; browser && mt != MediaJSON {
		h.refuse(w, http.StatusForbidden, "cross-origin requests are refused: a request with an Origin header may change the store only with a JSON body")
		return false
	}
	return true
}

// routeName names r's route in errors without echoing a key.
func routeName(r *http.Request) string {
	if KVPath(r) && r.Method != http.MethodPost {
		return kvRoot + "/{key}"
	}
	return r.URL.Path
}

// pathKey decodes the key of a /v1/kv/{key} route: the escaped path after
// /v1/kv/, percent-decoded exactly once, never cleaned.
func pathKey(raw string) ([]byte, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty key", kvraft.ErrInvalid)
	}
	k, err := unescapeKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", kvraft.ErrInvalid, err)
	}
	if len(k) > command.MaxKeySize {
		return nil, fmt.Errorf("%w: key of %d bytes, limit %d", kvraft.ErrTooLarge, len(k), command.MaxKeySize)
	}
	return k, nil
}

// errBodyTimeout is a body that did not arrive within the server's body
// timeout (408).
var errBodyTimeout = errors.New("kvhttp: request body too slow")

// readBody reads at most limit bytes of the body, or fails with ErrTooLarge
// before reading any of a body that declares a larger length.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: request body of %d bytes, over the limit of %d bytes", kvraft.ErrTooLarge, r.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w: %w", errBodyTimeout, err)
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: request body over the limit of %d bytes", kvraft.ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: read body: %w", kvraft.ErrInvalid, err)
	}
	return b, nil
}
