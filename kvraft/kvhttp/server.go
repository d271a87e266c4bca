package kvhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// Response headers of GET /v1/kv/{key}.
const (
	// IndexHeader carries the applied index that served a read.
	IndexHeader = "X-Penny-Index"
	// ModIndexHeader carries the mod index of the key read (the index of
	// the entry that last wrote it).
	ModIndexHeader = "X-Penny-Mod-Index"
)

// Limits on requests.
const (
	// DefaultMaxRequestBytes is the default of Config.MaxRequestBytes:
	// 1.5 MiB, etcd's --max-request-bytes.
	DefaultMaxRequestBytes = 3 << 19
	// MaxMaxRequestBytes bounds Config.MaxRequestBytes: the largest batch
	// command in base64 and JSON.
	MaxMaxRequestBytes = command.MaxCommandSize*4/3 + 1<<20
	// MaxBatchBody and MaxTxnBody are the default bounds of a batch and a
	// txn request body: every KV and membership body is bounded by
	// Config.MaxRequestBytes.
	MaxBatchBody = DefaultMaxRequestBytes
	// DefaultMaxRangeBytes is the default of Config.MaxRangeBytes: the keys
	// and values of one range answer (4 MiB).
	DefaultMaxRangeBytes = 4 << 20
	// DefaultRangeLimit and MaxRangeLimit bound the pairs a range returns.
	DefaultRangeLimit = 1000
	MaxRangeLimit     = 10000
)

// Store is the replica the handler serves; *kvraft.Node implements it.
// Reads are passed the request's context without a deadline: the store
// bounds any wait by its own request timeout.
type Store interface {
	Put(ctx context.Context, key, value []byte) (uint64, error)
	Delete(ctx context.Context, key []byte) (uint64, error)
	Batch(ctx context.Context, ops []kvraft.Op) (uint64, error)
	Txn(ctx context.Context, txn kvraft.Txn) (kvraft.TxnResult, error)
	Get(ctx context.Context, key []byte, opts kvraft.ReadOptions) (kvraft.GetResult, error)
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
	Status() kvraft.Status
	AddMember(ctx context.Context, m kvraft.Member) (uint64, error)
	RemoveMember(ctx context.Context, id uint64) (uint64, error)
}

// Config configures the handler.
type Config struct {
	// Timeout bounds each request (5s).
	Timeout time.Duration
	// MaxRequestBytes bounds every request body, KV and membership alike
	// (DefaultMaxRequestBytes, 1.5 MiB); a PUT's value is also bounded by
	// the store's value limit (1 MiB). Bodies are bounded before they are
	// read; a larger one is refused with 413.
	MaxRequestBytes int64
	// MaxRangeBytes bounds the keys and values of one range answer
	// (DefaultMaxRangeBytes, 4 MiB); a longer range is paged with a
	// continue token. An answer always carries at least one pair.
	MaxRangeBytes int64
	// Logger receives the errors of failed requests (discarded if nil).
	Logger *slog.Logger
	// Registerer receives the handler's metrics (none if nil).
	Registerer prometheus.Registerer
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxRangeBytes == 0 {
		c.MaxRangeBytes = DefaultMaxRangeBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Timeout < 0 {
		return errors.New("kvhttp: negative timeout")
	}
	if c.MaxRequestBytes < 4<<10 || c.MaxRequestBytes > MaxMaxRequestBytes {
		return fmt.Errorf("kvhttp: max request bytes %d not in [4096, %d]", c.MaxRequestBytes, int64(MaxMaxRequestBytes))
	}
	if c.MaxRangeBytes < 1 {
		return fmt.Errorf("kvhttp: max range bytes %d must be positive", c.MaxRangeBytes)
	}
	return nil
}

type handler struct {
	s        Store
	timeout  time.Duration
	maxBody  int64
	maxRange int64
	log      *slog.Logger
	refused  *prometheus.CounterVec
	mux      *http.ServeMux // the routes other than the keys'
}

// NewHandler returns the HTTP API of s; it completes cfg first.
//
// The routes under /v1/kv are matched on the request's escaped path, before
// anything cleans it: a key is the exact bytes after /v1/kv/, percent-decoded
// once, and no /v1/kv path is ever redirected. A server that puts this
// handler behind its own http.ServeMux must route /v1/kv paths to it first
// (Route), or the mux cleans and redirects them.
func NewHandler(s Store, cfg Config) (http.Handler, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &handler{s: s, timeout: cfg.Timeout, maxBody: cfg.MaxRequestBytes, maxRange: cfg.MaxRangeBytes, log: cfg.Logger,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_kvhttp_refused_total",
			Help: "KV and membership API requests refused, by HTTP status (400, 403, 404, 409, 413, 415, 503, 504, ...)."},
			[]string{"status"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.refused); err != nil {
			return nil, fmt.Errorf("kvhttp: register metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", h.cluster)
	mux.HandleFunc("POST /v1/cluster/members", h.json(h.addMember))
	mux.HandleFunc("DELETE /v1/cluster/members/{id}", h.bodyless(h.removeMember))
	mux.HandleFunc("GET /v1/health", h.health)
	mux.HandleFunc("/", h.noRoute)
	h.mux = mux
	return h, nil
}

// KVPath reports whether r is for a /v1/kv route, judged on its escaped
// path as sent: such requests must reach the handler uncleaned.
func KVPath(r *http.Request) bool {
	p := r.URL.EscapedPath()
	return p == kvRoot || strings.HasPrefix(p, kvRoot+"/")
}

// Route sends /v1/kv requests to kv as they are and every other request to
// other (typically an http.ServeMux, which cleans paths and redirects). A
// path that only cleaning would make a /v1/kv path (/v1//kv/a, /v1/x/../kv/a,
// /v1/kv%2Fa) is a 404: it is never redirected to a key.
func Route(kv, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if KVPath(r) {
			kv.ServeHTTP(w, r)
			return
		}
		if p := path.Clean(r.URL.Path); p == kvRoot || strings.HasPrefix(p, kvRoot+"/") {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s: KV paths are taken as sent, never cleaned", r.Method, r.URL.EscapedPath()))
			return
		}
		other.ServeHTTP(w, r)
	})
}

const kvRoot = "/v1/kv"

// ServeHTTP routes the key routes on the escaped path, the others through
// the mux.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case p == kvRoot:
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.rangeKeys(w, r)
			return
		}
	case strings.HasPrefix(p, kvRoot+"/"):
		raw := p[len(kvRoot)+1:]
		switch r.Method {
		case http.MethodPost:
			switch raw {
			case "batch":
				h.json(h.batch)(w, r)
				return
			case "txn":
				h.json(h.txn)(w, r)
				return
			}
		case http.MethodPut:
			h.withKey(raw, h.put)(w, r)
			return
		case http.MethodDelete:
			h.withKey(raw, h.del)(w, r)
			return
		case http.MethodGet, http.MethodHead:
			h.withKey(raw, h.get)(w, r)
			return
		}
	default:
		h.mux.ServeHTTP(w, r)
		return
	}
	h.noRoute(w, r)
}

func (h *handler) noRoute(w http.ResponseWriter, r *http.Request) {
	h.refuse(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.EscapedPath()))
}

// refuse writes a JSON error and counts it.
func (h *handler) refuse(w http.ResponseWriter, status int, msg string) {
	h.refused.WithLabelValues(strconv.Itoa(status)).Inc()
	writeError(w, status, msg)
}

type errorBody struct {
	Error string `json:"error"`
}

type indexBody struct {
	Index uint64 `json:"index"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// statusOf maps kvraft errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, kvraft.ErrNoLeader): // first: it wraps context.DeadlineExceeded
		return http.StatusServiceUnavailable
	case errors.Is(err, kvraft.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, kvraft.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, kvraft.ErrMemberNotFound):
		return http.StatusNotFound
	case errors.Is(err, kvraft.ErrMemberExists), errors.Is(err, kvraft.ErrIDRemoved), errors.Is(err, kvraft.ErrMembershipChange),
		errors.Is(err, kvraft.ErrPeerURLExists), errors.Is(err, kvraft.ErrReconfig):
		return http.StatusConflict
	case errors.Is(err, kvraft.ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, kvraft.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, kvraft.ErrStopped), errors.Is(err, kvraft.ErrRemoved), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// noLeaderRetryAfter is the Retry-After of an answer to a call that found
// no leader, in seconds: about an election with the default timing.
const noLeaderRetryAfter = "1"

// writeErr writes err with the status it maps to. An answer for
// kvraft.ErrNoLeader (503) carries a Retry-After header.
func writeErr(w http.ResponseWriter, err error) int {
	status := statusOf(err)
	if errors.Is(err, kvraft.ErrNoLeader) {
		w.Header().Set("Retry-After", noLeaderRetryAfter)
	}
	writeError(w, status, err.Error())
	return status
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := writeErr(w, err)
	h.refused.WithLabelValues(strconv.Itoa(status)).Inc()
	if status == http.StatusInternalServerError {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

// withKey runs fn with the key of a /v1/kv/{key} route.
func (h *handler) withKey(raw string, fn func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := pathKey(raw)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		fn(w, r, key)
	}
}

// json and bodyless guard a mutating route by its body's type (mutation).
func (h *handler) json(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.mutation(w, r, MediaJSON) {
			fn(w, r)
		}
	}
}

func (h *handler) bodyless(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.mutation(w, r, "") {
			fn(w, r)
		}
	}
}

// readJSON reads a JSON request body within the request limit; it must be
// UTF-8 (JSON's encoding), as the decoder would alter it rather than fail.
func (h *handler) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := readBody(w, r, h.maxBody)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, errNotUTF8
	}
	return b, nil
}

func (h *handler) put(w http.ResponseWriter, r *http.Request, key []byte) {
	if !h.mutation(w, r, MediaValue) {
		return
	}
	val, err := readBody(w, r, min(h.maxBody, command.MaxValueSize))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	idx, err := h.s.Put(ctx, key, val)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, indexBody{idx})
}

func (h *handler) del(w http.ResponseWriter, r *http.Request, key []byte) {
	if !h.mutation(w, r, "") {
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	idx, err := h.s.Delete(ctx, key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, indexBody{idx})
}

// BatchOp is one operation of a batch request.
//
// Key is the key when it is valid UTF-8; KeyB64 (base64 in JSON) carries
// any key, and must be used for one that is not UTF-8. Not both.
type BatchOp struct {
	Op     string `json:"op"`
	Key    string `json:"key,omitempty"`
	KeyB64 []byte `json:"key_b64,omitempty"` // base64 in JSON
	Value  []byte `json:"value,omitempty"`   // base64 in JSON
}

// BatchRequest is the body of POST /v1/kv/batch.
type BatchRequest struct {
	Ops []BatchOp `json:"ops"`
}

// DecodeBatch parses and validates a batch request body.
func DecodeBatch(r io.Reader) ([]kvraft.Op, error) {
	var req BatchRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: batch body: %w", kvraft.ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: batch body: trailing data", kvraft.ErrInvalid)
	}
	if len(req.Ops) == 0 {
		return nil, fmt.Errorf("%w: batch has no ops", kvraft.ErrInvalid)
	}
	if len(req.Ops) > command.MaxBatchOps {
		return nil, fmt.Errorf("%w: batch of %d ops, limit %d", kvraft.ErrTooLarge, len(req.Ops), command.MaxBatchOps)
	}
	ops, err := decodeOps(req.Ops, "op")
	if err != nil {
		return nil, err
	}
	if err := command.ValidateOps(ops); err != nil {
		return nil, commandErr(err)
	}
	return ops, nil
}

// decodeOps converts the ops of a request; what names them in errors.
func decodeOps(in []BatchOp, what string) ([]kvraft.Op, error) {
	if len(in) == 0 {
		return nil, nil
	}
	ops := make([]kvraft.Op, len(in))
	for i, o := range in {
		key, err := decodeKey(o.Key, o.KeyB64, fmt.Sprintf("%s %d", what, i))
		if err != nil {
			return nil, err
		}
		switch o.Op {
		case "put":
			ops[i] = kvraft.Op{Type: kvraft.OpPut, Key: key, Value: o.Value}
		case "delete":
			if o.Value != nil {
				return nil, fmt.Errorf("%w: %s %d: delete takes no value", kvraft.ErrInvalid, what, i)
			}
			ops[i] = kvraft.Op{Type: kvraft.OpDelete, Key: key}
		default:
			return nil, fmt.Errorf("%w: %s %d: unknown op %q (want put or delete)", kvraft.ErrInvalid, what, i, o.Op)
		}
	}
	return ops, nil
}

// commandErr maps a command validation error to the kvraft sentinel.
func commandErr(err error) error {
	if errors.Is(err, command.ErrTooLarge) {
		return fmt.Errorf("%w: %w", kvraft.ErrTooLarge, err)
	}
	return fmt.Errorf("%w: %w", kvraft.ErrInvalid, err)
}

func (h *handler) batch(w http.ResponseWriter, r *http.Request) {
	body, err := h.readJSON(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ops, err := DecodeBatch(bytesReader(body))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	idx, err := h.s.Batch(ctx, ops)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, indexBody{idx})
}

// ParseReadOptions parses consistency, max_staleness and index.
func ParseReadOptions(q url.Values) (kvraft.ReadOptions, error) {
	return readOptions(q.Get("consistency"), q.Get("max_staleness"), q.Get("index"))
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, key []byte) {
	opts, err := readQueryOptions(r.URL.RawQuery)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Reads that can be served at once (eventual, fresh bounded, applied
	// session) must not pay for a timer: the store applies its own request
	// timeout when a read has to wait.
	res, err := h.s.Get(r.Context(), key, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setValueHeaders(w.Header(), res)
	if !res.Found {
		writeError(w, http.StatusNotFound, "key not found")
		return
	}
	_, _ = w.Write(res.Value)
}

func (h *handler) cluster(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.s.Status())
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	st := h.s.Status()
	if st.Leader == 0 {
		h.fail(w, r, kvraft.ErrNoLeader)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"leader": st.Leader, "applied_index": st.AppliedIndex})
}

// DecodeMember parses and validates the body of POST /v1/cluster/members.
func DecodeMember(r io.Reader) (kvraft.Member, error) {
	var m kvraft.Member
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: member body: %w", kvraft.ErrInvalid, err)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

func (h *handler) addMember(w http.ResponseWriter, r *http.Request) {
	body, err := h.readJSON(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	m, err := DecodeMember(bytesReader(body))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	idx, err := h.s.AddMember(ctx, m)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, indexBody{idx})
}

func (h *handler) removeMember(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		h.fail(w, r, fmt.Errorf("%w: member id %q must be a positive integer", kvraft.ErrInvalid, r.PathValue("id")))
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	idx, err := h.s.RemoveMember(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, indexBody{idx})
}

// WriteJSON writes v as a JSON response with status, as the KV API does.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// WriteError writes err as the KV API's JSON error body, with the status
// the KV API maps it to (400 for kvraft.ErrInvalid, 504 for a timeout, 503
// with Retry-After for kvraft.ErrNoLeader, …).
func WriteError(w http.ResponseWriter, err error) { writeErr(w, err) }
