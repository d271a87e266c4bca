package kvhttp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// startServer runs a single-member store behind the HTTP API.
func startServer(t testing.TB) (*kvraft.Node, *httptest.Server) {
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
	h, err := kvhttp.NewHandler(n, kvhttp.Config{Timeout: 2 * time.Second})
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
	return n, srv
}

func TestClientRoundTrip(t *testing.T) {
	_, srv := startServer(t)
	c := kvhttp.NewClient(srv.URL)
	ctx := context.Background()
	i1, err := c.Put(ctx, []byte("a/b c"), []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Get(ctx, []byte("a/b c"), kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: i1})
	if err != nil || string(r.Value) != "v1" || r.Index < i1 || r.ModIndex != i1 {
		t.Fatalf("get = %+v, %v", r, err)
	}
	i2, err := c.Batch(ctx, []kvraft.Op{
		{Type: kvraft.OpPut, Key: []byte("a/x"), Value: []byte{0, 1, 2}},
		{Type: kvraft.OpPut, Key: []byte("a/y"), Value: nil},
		{Type: kvraft.OpDelete, Key: []byte("a/b c")},
	})
	if err != nil || i2 <= i1 {
		t.Fatalf("batch index %d, %v", i2, err)
	}
	if _, err := c.Get(ctx, []byte("a/b c"), kvraft.ReadOptions{}); !errors.Is(err, kvhttp.ErrNotFound) {
		t.Fatalf("get deleted key: %v", err)
	}
	rr, err := c.Range(ctx, []byte("a/"), 10, kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: time.Second})
	if err != nil || len(rr.Items) != 2 || rr.Items[0].Key != "a/x" || !bytes.Equal(rr.Items[0].Value, []byte{0, 1, 2}) || rr.Index < i2 ||
		rr.Items[0].ModIndex != i2 || rr.Items[1].ModIndex != i2 {
		t.Fatalf("range = %+v, %v", rr, err)
	}
	i3, err := c.Delete(ctx, []byte("a/x"))
	if err != nil || i3 <= i2 {
		t.Fatalf("delete index %d, %v", i3, err)
	}
	st, err := c.Cluster(ctx)
	if err != nil || st.ID != 1 || st.Leader != 1 || len(st.Members) != 1 || st.AppliedIndex < i3 {
		t.Fatalf("cluster = %+v, %v", st, err)
	}
}

func TestHTTPErrors(t *testing.T) {
	_, srv := startServer(t)
	big := strings.Repeat("x", command.MaxValueSize+1)
	manyOps := `{"ops":[` + strings.TrimSuffix(strings.Repeat(`{"op":"delete","key":"k"},`, command.MaxBatchOps+1), ",") + `]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"get missing", "GET", "/v1/kv/nope", "", 404, "key not found"},
		{"bad consistency", "GET", "/v1/kv/k?consistency=strong", "", 400, "unknown consistency"},
		{"bounded without staleness", "GET", "/v1/kv/k?consistency=bounded", "", 400, "max staleness"},
		{"bad staleness", "GET", "/v1/kv/k?consistency=bounded&max_staleness=soon", "", 400, "max_staleness"},
		{"session without index", "GET", "/v1/kv/k?consistency=session", "", 400, "needs an index"},
		{"bad index", "GET", "/v1/kv/k?consistency=session&index=-1", "", 400, "index"},
		{"value too large", "PUT", "/v1/kv/k", big, 413, "limit"},
		{"key too large", "PUT", "/v1/kv/" + strings.Repeat("k", command.MaxKeySize+1), "v", 413, "key"},
		{"batch not json", "POST", "/v1/kv/batch", "{", 400, "batch body"},
		{"batch unknown field", "POST", "/v1/kv/batch", `{"ops":[],"x":1}`, 400, "unknown field"},
		{"batch empty", "POST", "/v1/kv/batch", `{"ops":[]}`, 400, "no ops"},
		{"batch bad op", "POST", "/v1/kv/batch", `{"ops":[{"op":"incr","key":"k"}]}`, 400, "unknown op"},
		{"batch bad base64", "POST", "/v1/kv/batch", `{"ops":[{"op":"put","key":"k","value":"!!"}]}`, 400, "batch body"},
		{"batch empty key", "POST", "/v1/kv/batch", `{"ops":[{"op":"put","key":"","value":""}]}`, 400, "empty key"},
		{"batch too many ops", "POST", "/v1/kv/batch", manyOps, 413, "limit"},
		{"batch trailing", "POST", "/v1/kv/batch", `{"ops":[{"op":"delete","key":"k"}]} {}`, 400, "trailing"},
		{"txn not json", "POST", "/v1/kv/txn", "[", 400, "txn body"},
		{"txn empty", "POST", "/v1/kv/txn", `{}`, 400, "empty transaction"},
		{"txn unknown field", "POST", "/v1/kv/txn", `{"if":[],"x":1}`, 400, "unknown field"},
		{"txn trailing", "POST", "/v1/kv/txn", `{"then":[{"op":"delete","key":"k"}]} x`, 400, "trailing"},
		{"txn unknown target", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"version","op":"="}]}`, 400, "unknown target"},
		{"txn unknown compare op", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"exists","op":"=="}]}`, 400, "unknown op"},
		{"txn exists with <", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"exists","op":"<"}]}`, 400, "= or !="},
		{"txn value without value", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"value","op":"="}]}`, 400, "needs a value"},
		{"txn mod index without index", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"mod_index","op":"="}]}`, 400, "needs a mod_index"},
		{"txn exists with value", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"exists","op":"=","value":""}]}`, 400, "takes no value"},
		{"txn value with mod index", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"value","op":"=","value":"","mod_index":1}]}`, 400, "takes no mod_index"},
		{"txn negative mod index", "POST", "/v1/kv/txn", `{"if":[{"key":"k","target":"mod_index","op":"=","mod_index":-1}]}`, 400, "txn body"},
		{"txn compare empty key", "POST", "/v1/kv/txn", `{"if":[{"key":"","target":"exists","op":"="}]}`, 400, "empty key"},
		{"txn compare key too large", "POST", "/v1/kv/txn", `{"if":[{"key":"` + strings.Repeat("k", command.MaxKeySize+1) + `","target":"exists","op":"="}]}`, 413, "limit"},
		{"txn bad then op", "POST", "/v1/kv/txn", `{"then":[{"op":"incr","key":"k"}]}`, 400, "then op 0: unknown op"},
		{"txn bad else op", "POST", "/v1/kv/txn", `{"else":[{"op":"delete","key":"k","value":"AA=="}]}`, 400, "else op 0: delete takes no value"},
		{"txn value too large", "POST", "/v1/kv/txn", `{"then":[{"op":"put","key":"k","value":"` + base64.StdEncoding.EncodeToString(make([]byte, command.MaxValueSize+1)) + `"}]}`, 413, "limit"},
		{"txn too many ops", "POST", "/v1/kv/txn", `{"then":[` + strings.TrimSuffix(strings.Repeat(`{"op":"delete","key":"k"},`, command.MaxTxnOps/2+1), ",") +
			`],"else":[` + strings.TrimSuffix(strings.Repeat(`{"op":"delete","key":"k"},`, command.MaxTxnOps/2), ",") + `]}`, 413, "limit"},
		{"txn body too large", "POST", "/v1/kv/txn", strings.Repeat(" ", kvhttp.MaxTxnBody+1), 413, "body"},
		{"range bad limit", "GET", "/v1/kv?prefix=a&limit=0", "", 400, "limit"},
		{"range prefix and start", "GET", "/v1/kv?prefix=a&start=b", "", 400, "not both"},
		{"add member bad json", "POST", "/v1/cluster/members", `{"id":"x"}`, 400, "member body"},
		{"add member bad url", "POST", "/v1/cluster/members", `{"id":2,"peer_url":"nope"}`, 400, "url"},
		{"add existing member", "POST", "/v1/cluster/members", `{"id":1,"peer_url":"http://a:1"}`, 409, "exists"},
		{"remove unknown member", "DELETE", "/v1/cluster/members/9", "", 404, "not found"},
		{"remove bad id", "DELETE", "/v1/cluster/members/x", "", 400, "positive integer"},
		{"unknown route", "GET", "/v2/kv/k", "", 404, "no route"},
		{"wrong method", "PATCH", "/v1/kv/k", "", 404, "no route"},
		{"empty key", "PUT", "/v1/kv/", "v", 400, "empty key"},
		{"get empty key", "GET", "/v1/kv/", "", 400, "empty key"},
		{"batch key and key_b64", "POST", "/v1/kv/batch", `{"ops":[{"op":"delete","key":"k","key_b64":"aw=="}]}`, 400, "both set"},
		{"txn key and key_b64", "POST", "/v1/kv/txn", `{"if":[{"key":"k","key_b64":"aw==","target":"exists","op":"="}]}`, 400, "both set"},
		{"batch not utf-8", "POST", "/v1/kv/batch", "{\"ops\":[{\"op\":\"delete\",\"key\":\"\xff\"}]}", 400, "key_b64"},
		{"range bad continue", "GET", "/v1/kv?prefix=a&continue=!!", "", 400, "continue token"},
		{"range continue outside prefix", "GET", "/v1/kv?prefix=a&continue=Yg", "", 400, "outside the prefix"},
		{"range continue before start", "GET", "/v1/kv?start=b&end=c&continue=YQ", "", 400, "outside [start, end)"},
		{"range continue at end", "GET", "/v1/kv?start=a&end=b&continue=Yg", "", 400, "outside [start, end)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.method {
			case http.MethodPost:
				req.Header.Set("Content-Type", kvhttp.MediaJSON)
			case http.MethodPut:
				req.Header.Set("Content-Type", kvhttp.MediaValue)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var eb struct{ Error string }
			if resp.StatusCode != tt.status || json.Unmarshal(b, &eb) != nil || !strings.Contains(eb.Error, tt.msg) {
				t.Fatalf("%s %s = %d %s, want %d with %q", tt.method, tt.path, resp.StatusCode, b, tt.status, tt.msg)
			}
		})
	}
	// Nothing above changed the store.
	st, err := kvhttp.NewClient(srv.URL).Range(context.Background(), nil, 0, kvraft.ReadOptions{})
	if err != nil || len(st.Items) != 0 {
		t.Fatalf("rejected requests changed the store: %+v, %v", st, err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"ops":[{"op":"put","key":"a","value":"AAE="},{"op":"delete","key":"b"}]}`))
	f.Add([]byte(`{"ops":[]}`))
	f.Add([]byte(`{"ops":[{"op":"put","key":"","value":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := kvhttp.DecodeBatch(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, kvraft.ErrInvalid) && !errors.Is(err, kvraft.ErrTooLarge) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		if err := command.ValidateOps(ops); err != nil {
			t.Fatalf("decoded ops do not validate: %v", err)
		}
	})
}

func TestTxnOverHTTP(t *testing.T) {
	_, srv := startServer(t)
	c := kvhttp.NewClient(srv.URL)
	ctx := context.Background()
	i1, err := c.Put(ctx, []byte("seq"), []byte{0, 5})
	if err != nil {
		t.Fatal(err)
	}
	// The raw API as documented.
	post := func(body string) (int, kvhttp.TxnResponse) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/kv/txn", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr kvhttp.TxnResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, tr
	}
	status, tr := post(`{"if": [{"key": "seq", "target": "value", "op": "<", "value": "AAY="},
		{"key": "seq", "target": "mod_index", "op": "=", "mod_index": ` + fmt.Sprint(i1) + `},
		{"key": "frame", "target": "exists", "op": "!="}],
		"then": [{"op": "put", "key": "seq", "value": "AAY="}, {"op": "put", "key": "frame", "value": "Zg=="}],
		"else": [{"op": "put", "key": "dup", "value": "MQ=="}]}`)
	if status != 200 || !tr.Succeeded || tr.Index <= i1 {
		t.Fatalf("txn = %d %+v, want 200 and then", status, tr)
	}
	// The same frame again: the condition fails and else runs.
	status, tr2 := post(`{"if": [{"key": "seq", "target": "value", "op": "<", "value": "AAY="}],
		"then": [{"op": "put", "key": "seq", "value": "AAY="}], "else": [{"op": "put", "key": "dup", "value": "MQ=="}]}`)
	if status != 200 || tr2.Succeeded || tr2.Index <= tr.Index {
		t.Fatalf("duplicate txn = %d %+v, want 200 and else", status, tr2)
	}

	// The Go client, with mod indexes from reads.
	r, err := c.Get(ctx, []byte("seq"), kvraft.ReadOptions{})
	if err != nil || r.ModIndex != tr.Index || !bytes.Equal(r.Value, []byte{0, 6}) {
		t.Fatalf("get seq = %+v, %v; want mod index %d", r, err, tr.Index)
	}
	tests := []struct {
		name string
		txn  kvraft.Txn
		want bool
	}{
		{"stale mod index", kvraft.Txn{If: []kvraft.Compare{kvraft.CompareModIndex([]byte("seq"), kvraft.CmpEqual, i1)},
			Then: []kvraft.Op{{Type: kvraft.OpDelete, Key: []byte("seq")}}}, false},
		{"current mod index", kvraft.Txn{If: []kvraft.Compare{kvraft.CompareModIndex([]byte("seq"), kvraft.CmpEqual, r.ModIndex), kvraft.CompareExists([]byte("dup"))},
			Then: []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("seq"), Value: nil}}}, true},
		{"empty value", kvraft.Txn{If: []kvraft.Compare{kvraft.CompareValue([]byte("seq"), kvraft.CmpEqual, nil), kvraft.CompareMissing([]byte("nope"))},
			Else: []kvraft.Op{{Type: kvraft.OpDelete, Key: []byte("seq")}}}, true},
	}
	last := tr2.Index
	index := map[string]uint64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Txn(ctx, tt.txn)
			if err != nil || res.Succeeded != tt.want || res.Index <= last {
				t.Fatalf("Txn = %+v, %v; want succeeded=%v after %d", res, err, tt.want, last)
			}
			last = res.Index
			index[tt.name] = res.Index
		})
	}
	rr, err := c.Range(ctx, nil, 0, kvraft.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range rr.Items {
		got = append(got, fmt.Sprintf("%s=%q@%d", it.Key, it.Value, it.ModIndex))
	}
	want := fmt.Sprintf("[dup=\"1\"@%d frame=\"f\"@%d seq=\"\"@%d]", tr2.Index, tr.Index, index["current mod index"])
	if fmt.Sprint(got) != want {
		t.Fatalf("state = %v, want %s", got, want)
	}
	if _, err := c.Txn(ctx, kvraft.Txn{}); !errors.Is(err, kvraft.ErrInvalid) {
		t.Fatalf("empty txn: %v, want ErrInvalid before sending", err)
	}
}

func FuzzDecodeTxn(f *testing.F) {
	f.Add([]byte(`{"if":[{"key":"a","target":"value","op":"<","value":"AAE="},{"key":"b","target":"mod_index","op":"=","mod_index":7},
		{"key":"c","target":"exists","op":"!="}],"then":[{"op":"put","key":"a","value":"AAE="}],"else":[{"op":"delete","key":"b"}]}`))
	f.Add([]byte(`{"if":[{"key":"a","target":"exists","op":"="}]}`))
	f.Add([]byte(`{"then":[{"op":"put","key":"","value":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		txn, err := kvhttp.DecodeTxn(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, kvraft.ErrInvalid) && !errors.Is(err, kvraft.ErrTooLarge) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		if err := command.ValidateTxns([]kvraft.Txn{txn}); err != nil {
			t.Fatalf("decoded txn does not validate: %v", err)
		}
		// What decodes re-encodes to the same txn.
		enc, err := kvhttp.EncodeTxn(txn)
		if err != nil {
			t.Fatalf("decoded txn does not encode: %v", err)
		}
		txn2, err := kvhttp.DecodeTxn(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-encoded txn does not decode: %v", err)
		}
		if fmt.Sprint(txn2) != fmt.Sprint(txn) {
			t.Fatalf("round trip changed the txn: %+v != %+v", txn2, txn)
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	f.Add("consistency=bounded&max_staleness=500ms")
	f.Add("consistency=session&index=7")
	f.Add("prefix=a&limit=10")
	f.Add("start=a&end=b")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if o, err := kvhttp.ParseReadOptions(q); err == nil {
			if err := o.Validate(); err != nil {
				t.Fatalf("accepted options do not validate: %v", err)
			}
		} else if !errors.Is(err, kvraft.ErrInvalid) {
			t.Fatalf("unexpected error type: %v", err)
		}
		if r, err := kvhttp.ParseRange(q); err == nil {
			if r.Limit <= 0 || r.Limit > kvhttp.MaxRangeLimit {
				t.Fatalf("accepted limit %d", r.Limit)
			}
		} else if !errors.Is(err, kvraft.ErrInvalid) {
			t.Fatalf("unexpected error type: %v", err)
		}
	})
}

func BenchmarkGetEventual(b *testing.B) {
	n, srv := startServer(b)
	if _, err := n.Put(context.Background(), []byte("k"), make([]byte, 256)); err != nil {
		b.Fatal(err)
	}
	c := kvhttp.NewClient(srv.URL)
	opts := kvraft.ReadOptions{Consistency: kvraft.Eventual}
	for b.Loop() {
		if _, err := c.Get(context.Background(), []byte("k"), opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	_, srv := startServer(b)
	c := kvhttp.NewClient(srv.URL)
	v := make([]byte, 256)
	for b.Loop() {
		if _, err := c.Put(context.Background(), []byte("k"), v); err != nil {
			b.Fatal(err)
		}
	}
}
