package kvhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// ErrNotFound is returned by Client.Get when the key is absent.
var ErrNotFound = errors.New("kvhttp: key not found")

// Error is a non-2xx answer from a replica.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("kvhttp: %d: %s", e.Status, e.Message) }

// Is makes errors.Is(err, kvraft.ErrNoLeader) hold for the 503 answer a
// replica gives when it knows no leader (a write it refused so was never
// proposed).
func (e *Error) Is(target error) bool {
	return target == kvraft.ErrNoLeader && e.Status == http.StatusServiceUnavailable &&
		strings.Contains(e.Message, kvraft.ErrNoLeader.Error())
}

// DefaultMaxResponseBody is the default of Client.MaxResponseBody: larger
// than any request body (MaxBatchBody), so an answer carrying a full batch
// of values fits.
const DefaultMaxResponseBody = 64 << 20

// Client talks to one replica's HTTP API.
type Client struct {
	// Endpoint is the replica's base URL, e.g. http://127.0.0.1:2380.
	Endpoint string
	// HTTP is the client used (http.DefaultClient if nil).
	HTTP *http.Client
	// MaxResponseBody bounds the JSON answer the client reads
	// (DefaultMaxResponseBody if 0). A range answer over it fails with an
	// error wrapping kvraft.ErrTooLarge: narrow the range (a longer prefix
	// or a smaller limit) or raise the bound.
	MaxResponseBody int64
}

// NewClient returns a client for endpoint.
func NewClient(endpoint string) *Client {
	return &Client{Endpoint: strings.TrimSuffix(endpoint, "/")}
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// do sends a request; a body is sent with the given Content-Type.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, contentType string) (*http.Response, error) {
	u := c.Endpoint + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := c.send(ctx, method, u, body, contentType)
	if err != nil {
		return nil, fmt.Errorf("kvhttp: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// send sends a request to the URL u.
func (c *Client) send(ctx context.Context, method, u string, body []byte, contentType string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	return c.http().Do(req)
}

func (c *Client) maxResponseBody() int64 {
	if c.MaxResponseBody > 0 {
		return c.MaxResponseBody
	}
	return DefaultMaxResponseBody
}

// decode reads a JSON answer into v, or turns an error answer into *Error.
// An answer over the client's bound fails with kvraft.ErrTooLarge, an
// error answer over it is cut.
func (c *Client) decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	limit := c.maxResponseBody()
	ok := resp.StatusCode/100 == 2
	if ok && resp.ContentLength > limit {
		return responseTooLarge(limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("kvhttp: read response: %w", err)
	}
	if int64(len(b)) > limit {
		if ok {
			return responseTooLarge(limit)
		}
		b = b[:limit]
	}
	if !ok {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b))
		}
		return &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("kvhttp: decode response: %w", err)
	}
	return nil
}

func responseTooLarge(limit int64) error {
	return fmt.Errorf("kvhttp: answer over the client's limit of %d bytes (Client.MaxResponseBody): %w", limit, kvraft.ErrTooLarge)
}

func keyPath(key []byte) string { return "/v1/kv/" + url.PathEscape(string(key)) }

func (c *Client) write(ctx context.Context, method, path string, body []byte, contentType string) (uint64, error) {
	resp, err := c.do(ctx, method, path, nil, body, contentType)
	if err != nil {
		return 0, err
	}
	var ib indexBody
	if err := c.decode(resp, &ib); err != nil {
		return 0, err
	}
	return ib.Index, nil
}

// Put sets key to value and returns the commit index.
func (c *Client) Put(ctx context.Context, key, value []byte) (uint64, error) {
	if value == nil {
		value = []byte{}
	}
	return c.write(ctx, http.MethodPut, keyPath(key), value, MediaValue)
}

// Delete removes key and returns the commit index.
func (c *Client) Delete(ctx context.Context, key []byte) (uint64, error) {
	return c.write(ctx, http.MethodDelete, keyPath(key), nil, "")
}

// Batch applies ops atomically and returns the commit index.
func (c *Client) Batch(ctx context.Context, ops []kvraft.Op) (uint64, error) {
	for i, op := range ops {
		if op.Type != command.OpPut && op.Type != command.OpDelete {
			return 0, fmt.Errorf("%w: op %d has type %v", kvraft.ErrInvalid, i, op.Type)
		}
	}
	req := BatchRequest{Ops: encodeOps(ops)}
	b, err := json.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("kvhttp: encode batch: %w", err)
	}
	return c.write(ctx, http.MethodPost, "/v1/kv/batch", b, MediaJSON)
}

// Txn applies txn atomically if its compares hold (Then) or not (Else) and
// reports the commit index and which branch ran.
func (c *Client) Txn(ctx context.Context, txn kvraft.Txn) (kvraft.TxnResult, error) {
	b, err := EncodeTxn(txn)
	if err != nil {
		return kvraft.TxnResult{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/kv/txn", nil, b, MediaJSON)
	if err != nil {
		return kvraft.TxnResult{}, err
	}
	var tr TxnResponse
	if err := c.decode(resp, &tr); err != nil {
		return kvraft.TxnResult{}, err
	}
	return kvraft.TxnResult{Index: tr.Index, Succeeded: tr.Succeeded}, nil
}

func readQuery(opts kvraft.ReadOptions) url.Values {
	q := url.Values{}
	if opts.Consistency != kvraft.Linearizable {
		q.Set("consistency", opts.Consistency.String())
	}
	if opts.MaxStaleness > 0 {
		q.Set("max_staleness", opts.MaxStaleness.String())
	}
	if opts.MinIndex > 0 {
		q.Set("index", strconv.FormatUint(opts.MinIndex, 10))
	}
	return q
}

// Get reads key; it returns ErrNotFound (with the result's Index set) when
// the key is absent.
func (c *Client) Get(ctx context.Context, key []byte, opts kvraft.ReadOptions) (kvraft.GetResult, error) {
	resp, err := c.send(ctx, http.MethodGet, c.getURL(key, opts), nil, "")
	if err != nil {
		return kvraft.GetResult{}, fmt.Errorf("kvhttp: GET %s: %w", keyPath(key), err)
	}
	idx, _ := strconv.ParseUint(resp.Header.Get(IndexHeader), 10, 64)
	if resp.StatusCode == http.StatusOK {
		defer resp.Body.Close()
		v, err := readValue(resp.Body, resp.ContentLength)
		if err != nil {
			return kvraft.GetResult{}, fmt.Errorf("kvhttp: read value: %w", err)
		}
		// A replica that predates mod indexes sends no header (ModIndex 0).
		var mod uint64
		if h := resp.Header.Get(ModIndexHeader); h != "" {
			if mod, err = strconv.ParseUint(h, 10, 64); err != nil {
				return kvraft.GetResult{}, fmt.Errorf("kvhttp: bad %s header: %w", ModIndexHeader, err)
			}
		}
		return kvraft.GetResult{Value: v, Found: true, ModIndex: mod, Index: idx}, nil
	}
	if resp.StatusCode == http.StatusNotFound && idx > 0 {
		resp.Body.Close()
		return kvraft.GetResult{Index: idx}, ErrNotFound
	}
	return kvraft.GetResult{}, c.decode(resp, nil)
}

// Range reads the first page of the pairs under prefix: up to limit pairs
// (0 means the server's default) and no more bytes than the server's page
// bound. When the answer says More, RangeContinue with its Continue token
// reads the next page; RangeAll reads them all.
func (c *Client) Range(ctx context.Context, prefix []byte, limit int, opts kvraft.ReadOptions) (RangeResponse, error) {
	return c.RangeContinue(ctx, prefix, "", limit, opts)
}

// RangeContinue reads the page of the pairs under prefix that token (a
// previous page's Continue; "" for the first page) starts.
func (c *Client) RangeContinue(ctx context.Context, prefix []byte, token string, limit int, opts kvraft.ReadOptions) (RangeResponse, error) {
	q := readQuery(opts)
	q.Set("prefix", string(prefix))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if token != "" {
		q.Set("continue", token)
	}
	var out RangeResponse
	resp, err := c.do(ctx, http.MethodGet, "/v1/kv", q, nil, "")
	if err != nil {
		return out, err
	}
	if err := c.decode(resp, &out); err != nil {
		if errors.Is(err, kvraft.ErrTooLarge) {
			return RangeResponse{}, fmt.Errorf("%w; narrow the range: a longer prefix or a smaller limit", err)
		}
		return RangeResponse{}, err
	}
	if out.More && out.Continue == "" {
		return RangeResponse{}, fmt.Errorf("kvhttp: a page with more to read but no continue token")
	}
	return out, nil
}

// RangeAll reads every pair under prefix, page after page. Each page is
// read with opts and served from the state at its own index: the pages
// are not one snapshot (a key written meanwhile may be missed or seen new).
// The answer's Index is the last page's, More is false.
func (c *Client) RangeAll(ctx context.Context, prefix []byte, opts kvraft.ReadOptions) (RangeResponse, error) {
	var all RangeResponse
	token := ""
	for {
		page, err := c.RangeContinue(ctx, prefix, token, MaxRangeLimit, opts)
		if err != nil {
			return RangeResponse{}, err
		}
		all.Items = append(all.Items, page.Items...)
		all.Index = page.Index
		if !page.More {
			return all, nil
		}
		token = page.Continue
	}
}

// Cluster returns the replica's view of the cluster.
func (c *Client) Cluster(ctx context.Context) (kvraft.Status, error) {
	var st kvraft.Status
	resp, err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, nil, "")
	if err != nil {
		return st, err
	}
	return st, c.decode(resp, &st)
}

// AddMember adds a member and returns the index of the change.
func (c *Client) AddMember(ctx context.Context, m kvraft.Member) (uint64, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("kvhttp: encode member: %w", err)
	}
	return c.write(ctx, http.MethodPost, "/v1/cluster/members", b, MediaJSON)
}

// RemoveMember removes a member and returns the index of the change.
func (c *Client) RemoveMember(ctx context.Context, id uint64) (uint64, error) {
	return c.write(ctx, http.MethodDelete, "/v1/cluster/members/"+strconv.FormatUint(id, 10), nil, "")
}

// WaitHealthy polls /v1/health until the replica knows a leader.
func (c *Client) WaitHealthy(ctx context.Context) error {
	for {
		resp, err := c.do(ctx, http.MethodGet, "/v1/health", nil, nil, "")
		if err == nil {
			err = c.decode(resp, nil)
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kvhttp: %s not healthy: %w (last error: %w)", c.Endpoint, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
