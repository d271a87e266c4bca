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
	"strconv"
	"time"

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
	// MaxBatchBody bounds a batch request body: the largest batch command
	// plus base64 and JSON overhead.
	MaxBatchBody = command.MaxCommandSize*4/3 + 1<<20
	// DefaultRangeLimit and MaxRangeLimit bound the pairs a range returns.
	DefaultRangeLimit = 1000
	MaxRangeLimit     = 10000
	maxSmallBody      = 64 << 10
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
	// Logger receives the errors of failed requests (discarded if nil).
	Logger *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
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
	return nil
}

type handler struct {
	s       Store
	timeout time.Duration
	log     *slog.Logger
}

// NewHandler returns the HTTP API of s; it completes cfg first.
func NewHandler(s Store, cfg Config) (http.Handler, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &handler{s: s, timeout: cfg.Timeout, log: cfg.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/kv/{key...}", h.put)
	mux.HandleFunc("DELETE /v1/kv/{key...}", h.del)
	mux.HandleFunc("GET /v1/kv/{key...}", h.get)
	mux.HandleFunc("POST /v1/kv/batch", h.batch)
	mux.HandleFunc("POST /v1/kv/txn", h.txn)
	mux.HandleFunc("GET /v1/kv", h.rangeKeys)
	mux.HandleFunc("GET /v1/cluster", h.cluster)
	mux.HandleFunc("POST /v1/cluster/members", h.addMember)
	mux.HandleFunc("DELETE /v1/cluster/members/{id}", h.removeMember)
	mux.HandleFunc("GET /v1/health", h.health)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return mux, nil
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
	if status := writeErr(w, err); status == http.StatusInternalServerError {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.timeout)
}

func pathKey(r *http.Request) ([]byte, error) {
	k := r.PathValue("key")
	if k == "" {
		return nil, fmt.Errorf("%w: empty key", kvraft.ErrInvalid)
	}
	if len(k) > command.MaxKeySize {
		return nil, fmt.Errorf("%w: key of %d bytes, limit %d", kvraft.ErrTooLarge, len(k), command.MaxKeySize)
	}
	return []byte(k), nil
}

// readBody reads at most limit bytes of the body, or fails with ErrTooLarge.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: body of %d bytes, limit %d", kvraft.ErrTooLarge, r.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: body over %d bytes", kvraft.ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: read body: %w", kvraft.ErrInvalid, err)
	}
	return b, nil
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	key, err := pathKey(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	val, err := readBody(w, r, command.MaxValueSize)
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

func (h *handler) del(w http.ResponseWriter, r *http.Request) {
	key, err := pathKey(r)
	if err != nil {
		h.fail(w, r, err)
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
type BatchOp struct {
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value []byte `json:"value,omitempty"` // base64 in JSON
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
		switch o.Op {
		case "put":
			ops[i] = kvraft.Op{Type: kvraft.OpPut, Key: []byte(o.Key), Value: o.Value}
		case "delete":
			if o.Value != nil {
				return nil, fmt.Errorf("%w: %s %d: delete takes no value", kvraft.ErrInvalid, what, i)
			}
			ops[i] = kvraft.Op{Type: kvraft.OpDelete, Key: []byte(o.Key)}
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
	body, err := readBody(w, r, MaxBatchBody)
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
	var o kvraft.ReadOptions
	if c := q.Get("consistency"); c != "" {
		var err error
		if o.Consistency, err = kvraft.ParseConsistency(c); err != nil {
			return o, err
		}
	}
	if s := q.Get("max_staleness"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%w: max_staleness %q must be a positive duration like 500ms", kvraft.ErrInvalid, s)
		}
		o.MaxStaleness = d
	}
	if s := q.Get("index"); s != "" {
		i, err := strconv.ParseUint(s, 10, 64)
		if err != nil || i == 0 {
			return o, fmt.Errorf("%w: index %q must be a positive integer", kvraft.ErrInvalid, s)
		}
		o.MinIndex = i
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	key, err := pathKey(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var opts kvraft.ReadOptions
	if r.URL.RawQuery != "" {
		if opts, err = ParseReadOptions(r.URL.Query()); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	// Reads that can be served at once (eventual, fresh bounded, applied
	// session) must not pay for a timer: the store applies its own request
	// timeout when a read has to wait.
	res, err := h.s.Get(r.Context(), key, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hdr := w.Header()
	hdr[IndexHeader] = []string{strconv.FormatUint(res.Index, 10)}
	if !res.Found {
		writeError(w, http.StatusNotFound, "key not found")
		return
	}
	hdr[ModIndexHeader] = []string{strconv.FormatUint(res.ModIndex, 10)}
	hdr["Content-Type"] = []string{"application/octet-stream"}
	hdr["Content-Length"] = []string{strconv.Itoa(len(res.Value))}
	_, _ = w.Write(res.Value)
}

// Item is one pair of a range response.
type Item struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
	// ModIndex is the index of the entry that last wrote the key.
	ModIndex uint64 `json:"mod_index"`
}

// RangeResponse is the body of GET /v1/kv.
type RangeResponse struct {
	Index uint64 `json:"index"`
	Items []Item `json:"items"`
	More  bool   `json:"more"`
}

// ParseRange parses prefix, start, end and limit.
func ParseRange(q url.Values) (kvraft.RangeRequest, error) {
	var req kvraft.RangeRequest
	_, hasPrefix := q["prefix"]
	if hasPrefix && (q.Has("start") || q.Has("end")) {
		return req, fmt.Errorf("%w: use prefix or start/end, not both", kvraft.ErrInvalid)
	}
	for _, p := range []string{"prefix", "start", "end"} {
		if len(q.Get(p)) > command.MaxKeySize {
			return req, fmt.Errorf("%w: %s longer than %d bytes", kvraft.ErrInvalid, p, command.MaxKeySize)
		}
	}
	if hasPrefix {
		req.Prefix = []byte(q.Get("prefix"))
	} else {
		req.Start = []byte(q.Get("start"))
		if e := q.Get("end"); e != "" {
			req.End = []byte(e)
		}
	}
	req.Limit = DefaultRangeLimit
	if s := q.Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l <= 0 || l > MaxRangeLimit {
			return req, fmt.Errorf("%w: limit %q must be in [1, %d]", kvraft.ErrInvalid, s, MaxRangeLimit)
		}
		req.Limit = l
	}
	return req, nil
}

func (h *handler) rangeKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req, err := ParseRange(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	opts, err := ParseReadOptions(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.s.Range(ctx, req, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := RangeResponse{Index: res.Index, Items: make([]Item, len(res.Items)), More: res.More}
	for i, kv := range res.Items {
		out.Items[i] = Item{Key: string(kv.Key), Value: kv.Value, ModIndex: kv.ModIndex}
	}
	w.Header().Set(IndexHeader, strconv.FormatUint(res.Index, 10))
	writeJSON(w, http.StatusOK, out)
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
	body, err := readBody(w, r, maxSmallBody)
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
