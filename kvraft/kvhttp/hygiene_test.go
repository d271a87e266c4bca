package kvhttp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// startServerWith runs a single-member store behind the HTTP API configured
// by cfg, with its metrics in the returned registry.
func startServerWith(t testing.TB, cfg kvhttp.Config) (*kvraft.Node, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	n, err := kvraft.Start(context.Background(), kvraft.Config{
		ID: 1, DataDir: t.TempDir(), TickInterval: 10 * time.Millisecond,
		InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}},
		NewTransport:   kvraft.SingleMember,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	h, err := kvhttp.NewHandler(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kvhttp.NewClient(srv.URL).WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return n, srv, reg
}

// noRedirects is a client that reports redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send makes a raw request; the path is sent exactly as written.
func send(t *testing.T, method, url, contentType string, body []byte, hdr ...string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// allKeys lists every key of the store, as the API reports them.
func allKeys(t *testing.T, c *kvhttp.Client) []string {
	t.Helper()
	rr, err := c.RangeAll(context.Background(), nil, kvraft.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range rr.Items {
		keys = append(keys, it.Key)
	}
	return keys
}

// TestKeyIsTheExactPath writes keys through raw paths that a cleaning
// router would redirect (and a client following the redirect would write
// elsewhere): each key is the path after /v1/kv/ percent-decoded once.
func TestKeyIsTheExactPath(t *testing.T) {
	_, srv, _ := startServerWith(t, kvhttp.Config{})
	c := kvhttp.NewClient(srv.URL)
	tests := []struct{ path, key string }{
		{"a/../b", "a/../b"},
		{"a/./b", "a/./b"},
		{"..", ".."},
		{"a//b", "a//b"},
		{"/lead", "/lead"},
		{"trail/", "trail/"},
		{"x%2Fy", "x/y"},
		{"x%252Fy", "x%2Fy"},
		{"sp%20ace+plus", "sp ace+plus"},
		{"%FF%00", "\xff\x00"},
	}
	var want []string
	for i, tt := range tests {
		val := fmt.Appendf(nil, "v%d", i)
		status, body := send(t, http.MethodPut, srv.URL+"/v1/kv/"+tt.path, kvhttp.MediaValue, val)
		if status != http.StatusOK {
			t.Fatalf("PUT /v1/kv/%s = %d %s, want 200 and no redirect", tt.path, status, body)
		}
		status, body = send(t, http.MethodGet, srv.URL+"/v1/kv/"+tt.path, "", nil)
		if status != http.StatusOK || !bytes.Equal(body, val) {
			t.Fatalf("GET /v1/kv/%s = %d %q, want %q", tt.path, status, body, val)
		}
		r, err := c.Get(context.Background(), []byte(tt.key), kvraft.ReadOptions{})
		if err != nil || !bytes.Equal(r.Value, val) {
			t.Fatalf("client Get(%q) = %q, %v; want %q", tt.key, r.Value, err, val)
		}
		want = append(want, tt.key)
	}
	slices.Sort(want)
	if got := allKeys(t, c); !slices.Equal(got, want) {
		t.Fatalf("keys = %q, want exactly %q", got, want)
	}
	// Deleting through a tricky path deletes that key only.
	if status, body := send(t, http.MethodDelete, srv.URL+"/v1/kv/a/../b", "", nil); status != http.StatusOK {
		t.Fatalf("DELETE a/../b = %d %s", status, body)
	}
	if got := allKeys(t, c); slices.Contains(got, "a/../b") || len(got) != len(want)-1 {
		t.Fatalf("after deleting a/../b: keys %q", got)
	}
	// The client writes the same keys through its own escaping.
	for _, tt := range tests {
		if _, err := c.Put(context.Background(), []byte(tt.key), []byte("c")); err != nil {
			t.Fatalf("client Put(%q): %v", tt.key, err)
		}
	}
	if got := allKeys(t, c); !slices.Equal(got, want) {
		t.Fatalf("keys after client puts = %q, want exactly %q", got, want)
	}
}

// TestNonUTF8KeysRoundTrip writes random keys and values through every
// write route and reads them back through every read route: exact bytes.
func TestNonUTF8KeysRoundTrip(t *testing.T) {
	_, srv, _ := startServerWith(t, kvhttp.Config{})
	c := kvhttp.NewClient(srv.URL)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, 1+rng.IntN(n))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	want := map[string][]byte{}
	var ops []kvraft.Op
	for i := range 40 {
		k := append([]byte{'r', byte(i)}, random(24)...)
		k = append(k, 0xff) // never UTF-8
		v := random(64)
		want[string(k)] = v
		ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: k, Value: v})
	}
	if _, err := c.Batch(ctx, ops[:20]); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops[20:30] {
		if _, err := c.Put(ctx, op.Key, op.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range ops[30:] {
		res, err := c.Txn(ctx, kvraft.Txn{If: []kvraft.Compare{kvraft.CompareMissing(op.Key)}, Then: []kvraft.Op{op}})
		if err != nil || !res.Succeeded {
			t.Fatalf("txn put %q: %+v, %v", op.Key, res, err)
		}
	}
	// A txn comparing a non-UTF-8 key's value succeeds only on the exact key.
	res, err := c.Txn(ctx, kvraft.Txn{If: []kvraft.Compare{kvraft.CompareValue(ops[0].Key, kvraft.CmpEqual, ops[0].Value)},
		Then: []kvraft.Op{{Type: kvraft.OpDelete, Key: ops[1].Key}}})
	if err != nil || !res.Succeeded {
		t.Fatalf("txn on a non-UTF-8 key: %+v, %v", res, err)
	}
	delete(want, string(ops[1].Key))
	rr, err := c.RangeAll(ctx, []byte("r"), kvraft.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Items) != len(want) {
		t.Fatalf("range: %d items, want %d", len(rr.Items), len(want))
	}
	for _, it := range rr.Items {
		if v, ok := want[it.Key]; !ok || !bytes.Equal(v, it.Value) {
			t.Fatalf("range item %q = %q, want %q (present %v)", it.Key, it.Value, v, ok)
		}
		g, err := c.Get(ctx, []byte(it.Key), kvraft.ReadOptions{})
		if err != nil || !bytes.Equal(g.Value, it.Value) {
			t.Fatalf("get %q = %q, %v", it.Key, g.Value, err)
		}
	}
	// The raw answer carries such keys as key_b64, valid UTF-8 ones as key.
	status, body := send(t, http.MethodGet, srv.URL+"/v1/kv?prefix=r&limit=1", "", nil)
	var raw struct{ Items []map[string]any }
	if status != 200 || json.Unmarshal(body, &raw) != nil || len(raw.Items) != 1 || raw.Items[0]["key_b64"] == nil || raw.Items[0]["key"] != nil {
		t.Fatalf("raw range = %d %s, want one item with key_b64 only", status, body)
	}
	if _, err := c.Put(ctx, []byte("plain"), nil); err != nil {
		t.Fatal(err)
	}
	status, body = send(t, http.MethodGet, srv.URL+"/v1/kv?prefix=plain", "", nil)
	if status != 200 || !strings.Contains(string(body), `"key":"plain"`) || strings.Contains(string(body), "key_b64") {
		t.Fatalf("raw range of a UTF-8 key = %d %s, want \"key\"", status, body)
	}
}

// FuzzRoundTrip puts any key and value through the real handler and
// client and reads them back exactly, by Get, Range and Txn.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("a/../b"), []byte("v"))
	f.Add([]byte("\xff\xfe"), []byte{0, 1})
	f.Add([]byte("%2F/./"), []byte(nil))
	f.Add([]byte("é\x80"), []byte("\xc3"))
	_, srv, _ := startServerWith(f, kvhttp.Config{})
	c := kvhttp.NewClient(srv.URL)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if len(key) == 0 || len(key) > 4096 || len(value) > 1<<16 {
			return
		}
		ctx := context.Background()
		idx, err := c.Put(ctx, key, value)
		if err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		g, err := c.Get(ctx, key, kvraft.ReadOptions{})
		if err != nil || !bytes.Equal(g.Value, value) || g.ModIndex != idx {
			t.Fatalf("get %q = %+v, %v; want %q at %d", key, g, err, value, idx)
		}
		rr, err := c.Range(ctx, key, 1, kvraft.ReadOptions{})
		if err != nil || len(rr.Items) != 1 || rr.Items[0].Key != string(key) || !bytes.Equal(rr.Items[0].Value, value) {
			t.Fatalf("range %q = %+v, %v", key, rr, err)
		}
		tr, err := c.Txn(ctx, kvraft.Txn{If: []kvraft.Compare{kvraft.CompareValue(key, kvraft.CmpEqual, value)},
			Then: []kvraft.Op{{Type: kvraft.OpDelete, Key: key}}})
		if err != nil || !tr.Succeeded {
			t.Fatalf("txn on %q = %+v, %v", key, tr, err)
		}
		if _, err := c.Get(ctx, key, kvraft.ReadOptions{}); !errors.Is(err, kvhttp.ErrNotFound) {
			t.Fatalf("get %q after the txn deleted it: %v", key, err)
		}
	})
}

// TestBrowserRequestsRefused sends what a page can send cross-origin
// without a preflight, and mutations from a browser: all refused before
// anything happens, and counted.
func TestBrowserRequestsRefused(t *testing.T) {
	_, srv, reg := startServerWith(t, kvhttp.Config{})
	batch := []byte(`{"ops":[{"op":"put","key":"k","value":"dg=="}]}`)
	member := []byte(`{"id":2,"peer_url":"http://127.0.0.1:9"}`)
	tests := []struct {
		name, method, path, ct string
		body                   []byte
		hdr                    []string
		status                 int
	}{
		{"batch text/plain", "POST", "/v1/kv/batch", "text/plain", batch, nil, 415},
		{"batch form", "POST", "/v1/kv/batch", "application/x-www-form-urlencoded", batch, nil, 415},
		{"batch multipart", "POST", "/v1/kv/batch", "multipart/form-data; boundary=x", batch, nil, 415},
		{"batch no type", "POST", "/v1/kv/batch", "", batch, nil, 415},
		{"txn text/plain", "POST", "/v1/kv/txn", "text/plain;charset=UTF-8", []byte(`{"then":[{"op":"put","key":"k","value":"dg=="}]}`), nil, 415},
		{"member text/plain", "POST", "/v1/cluster/members", "text/plain", member, nil, 415},
		{"member no type", "POST", "/v1/cluster/members", "", member, nil, 415},
		{"put text/plain", "PUT", "/v1/kv/k", "text/plain", []byte("v"), nil, 415},
		{"put form", "PUT", "/v1/kv/k", "application/x-www-form-urlencoded", []byte("v"), nil, 415},
		{"put no type", "PUT", "/v1/kv/k", "", []byte("v"), nil, 415},
		{"put bad type", "PUT", "/v1/kv/k", "%%", []byte("v"), nil, 415},
		{"delete text/plain body", "DELETE", "/v1/kv/k", "text/plain", []byte("x"), nil, 415},
		{"put from a browser", "PUT", "/v1/kv/k", kvhttp.MediaValue, []byte("v"), []string{"Origin", "http://evil.example"}, 403},
		{"delete from a browser", "DELETE", "/v1/kv/k", "", nil, []string{"Origin", "null"}, 403},
		{"remove member from a browser", "DELETE", "/v1/cluster/members/1", "", nil, []string{"Origin", "http://evil.example"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(t, tt.method, srv.URL+tt.path, tt.ct, tt.body, tt.hdr...)
			var eb struct{ Error string }
			if status != tt.status || json.Unmarshal(body, &eb) != nil || eb.Error == "" {
				t.Fatalf("%s %s (%s) = %d %s, want %d with a JSON error", tt.method, tt.path, tt.ct, status, body, tt.status)
			}
		})
	}
	c := kvhttp.NewClient(srv.URL)
	if keys := allKeys(t, c); len(keys) != 0 {
		t.Fatalf("refused requests wrote %q", keys)
	}
	if st, err := c.Cluster(context.Background()); err != nil || len(st.Members) != 1 {
		t.Fatalf("refused requests changed the membership: %+v, %v", st, err)
	}
	var refused float64
	for _, s := range []string{"403", "415"} {
		refused += refusals(t, reg, s)
	}
	if int(refused) != len(tests) {
		t.Fatalf("refusals counted: %v, want %d", refused, len(tests))
	}
	// A JSON body with an Origin header is what a page can send only after
	// a preflight this API never approves: allowed.
	if status, body := send(t, "POST", srv.URL+"/v1/kv/batch", "application/json; charset=utf-8", batch, "Origin", "http://ok.example"); status != 200 {
		t.Fatalf("JSON batch = %d %s", status, body)
	}
}

// refusals returns the refusal counter for status.
func refusals(t *testing.T, reg *prometheus.Registry, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "penny_kvhttp_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRequestBodyLimit sends bodies over the request limit (1.5 MiB by
// default), declared and chunked: 413 before the store sees anything.
func TestRequestBodyLimit(t *testing.T) {
	_, srv, _ := startServerWith(t, kvhttp.Config{})
	value := base64.StdEncoding.EncodeToString(make([]byte, 600<<10))
	// Two values of 600 KiB: a valid batch of 1.6 MiB in JSON, under the
	// store's own limits.
	batch := []byte(`{"ops":[{"op":"put","key":"a","value":"` + value + `"},{"op":"put","key":"b","value":"` + value + `"}]}`)
	txn := []byte(`{"then":[{"op":"put","key":"a","value":"` + value + `"},{"op":"put","key":"b","value":"` + value + `"}]}`)
	member := []byte(`{"id":2,"peer_url":"http://127.0.0.1:9","api_url":"http://` + strings.Repeat("x", kvhttp.DefaultMaxRequestBytes) + `"}`)
	for _, tt := range []struct {
		name, method, path, ct string
		body                   []byte
	}{
		{"batch", "POST", "/v1/kv/batch", kvhttp.MediaJSON, batch},
		{"txn", "POST", "/v1/kv/txn", kvhttp.MediaJSON, txn},
		{"member", "POST", "/v1/cluster/members", kvhttp.MediaJSON, member},
		{"put", "PUT", "/v1/kv/k", kvhttp.MediaValue, make([]byte, 1<<20+1)},
	} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s chunked=%v", tt.name, chunked), func(t *testing.T) {
				var rd io.Reader = bytes.NewReader(tt.body)
				if chunked {
					rd = io.MultiReader(rd) // no length: the server reads until the limit
				}
				req, err := http.NewRequest(tt.method, srv.URL+tt.path, rd)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", tt.ct)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "limit of") {
					t.Fatalf("%d %s, want 413 naming the limit", resp.StatusCode, b)
				}
			})
		}
	}
	c := kvhttp.NewClient(srv.URL)
	if keys := allKeys(t, c); len(keys) != 0 {
		t.Fatalf("refused requests wrote %q", keys)
	}
	if _, err := c.Batch(context.Background(), []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("a"), Value: make([]byte, 600<<10)},
		{Type: kvraft.OpPut, Key: []byte("b"), Value: make([]byte, 600<<10)}}); !errors.Is(err, kvraft.ErrTooLarge) && !strings.Contains(fmt.Sprint(err), "413") {
		t.Fatalf("client batch over the limit: %v, want a 413", err)
	}
	// The limit is a setting.
	_, big, _ := startServerWith(t, kvhttp.Config{MaxRequestBytes: 4 << 20})
	if status, body := send(t, "POST", big.URL+"/v1/kv/batch", kvhttp.MediaJSON, batch); status != 200 {
		t.Fatalf("batch under a 4 MiB limit = %d %s", status, body)
	}
}

// TestRangePagesLargeValues stores more large values than one answer may
// carry and reads them: every page stays within the byte bound, and the
// pages together hold every pair once.
func TestRangePagesLargeValues(t *testing.T) {
	n, srv, _ := startServerWith(t, kvhttp.Config{})
	const count, size = 24, 512 << 10 // 12 MiB in all, 3x the page bound
	for i := range count {
		if _, err := n.Put(context.Background(), fmt.Appendf(nil, "big/%02d", i), bytes.Repeat([]byte{byte(i)}, size)); err != nil {
			t.Fatal(err)
		}
	}
	token, pages, seen := "", 0, 0
	for {
		url := srv.URL + "/v1/kv?prefix=big/"
		if token != "" {
			url += "&continue=" + token
		}
		status, body := send(t, http.MethodGet, url, "", nil)
		if status != 200 {
			t.Fatalf("page %d: %d %s", pages, status, body)
		}
		// A page carries at most 4 MiB of keys and values: 4/3 of it in
		// base64, plus JSON around it.
		if len(body) > kvhttp.DefaultMaxRangeBytes*4/3+64<<10 {
			t.Fatalf("page %d: %d bytes, over the bound", pages, len(body))
		}
		var page kvhttp.RangeResponse
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if it.Key != fmt.Sprintf("big/%02d", seen) || len(it.Value) != size || it.Value[0] != byte(seen) {
				t.Fatalf("page %d: item %q, want big/%02d", pages, it.Key, seen)
			}
			seen++
		}
		pages++
		if !page.More {
			break
		}
		token = page.Continue
	}
	if seen != count || pages < 3 {
		t.Fatalf("%d pairs in %d pages, want %d in at least 3", seen, pages, count)
	}
	all, err := kvhttp.NewClient(srv.URL).RangeAll(context.Background(), []byte("big/"), kvraft.ReadOptions{})
	if err != nil || len(all.Items) != count || all.More {
		t.Fatalf("RangeAll: %d items, more %v, %v", len(all.Items), all.More, err)
	}
	// The count cap pages too.
	c := kvhttp.NewClient(srv.URL)
	p1, err := c.Range(context.Background(), []byte("big/"), 2, kvraft.ReadOptions{})
	if err != nil || len(p1.Items) != 2 || !p1.More {
		t.Fatalf("first page of 2: %+v, %v", len(p1.Items), err)
	}
	p2, err := c.RangeContinue(context.Background(), []byte("big/"), p1.Continue, 2, kvraft.ReadOptions{})
	if err != nil || len(p2.Items) != 2 || p2.Items[0].Key != "big/02" {
		t.Fatalf("second page of 2: %d items, %v", len(p2.Items), err)
	}
}

// FuzzItemJSON round-trips a range item through its JSON form.
func FuzzItemJSON(f *testing.F) {
	f.Add("a/b", []byte("v"), uint64(3))
	f.Add("\xff\x00", []byte(nil), uint64(0))
	f.Add("é", []byte{0xff}, uint64(1)<<63)
	f.Fuzz(func(t *testing.T, key string, value []byte, mod uint64) {
		b, err := json.Marshal(kvhttp.Item{Key: key, Value: value, ModIndex: mod})
		if err != nil {
			t.Fatal(err)
		}
		var it kvhttp.Item
		if err := json.Unmarshal(b, &it); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if it.Key != key || !bytes.Equal(it.Value, value) || it.ModIndex != mod {
			t.Fatalf("%q %q %d came back as %q %q %d", key, value, mod, it.Key, it.Value, it.ModIndex)
		}
	})
}
