package kvhttp

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
)

// generalReadOptions is what the point read did before readQueryOptions:
// the request's parsed query, parse errors ignored.
func generalReadOptions(raw string) (kvraft.ReadOptions, error) {
	q, _ := url.ParseQuery(raw)
	return ParseReadOptions(q)
}

func sameReadOptions(t *testing.T, raw string) {
	t.Helper()
	got, gotErr := readQueryOptions(raw)
	want, wantErr := generalReadOptions(raw)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("readQueryOptions(%q): error %v, want %v", raw, gotErr, wantErr)
	}
	if gotErr == nil && got != want {
		t.Fatalf("readQueryOptions(%q) = %+v, want %+v", raw, got, want)
	}
}

func TestReadQueryOptions(t *testing.T) {
	tests := []struct {
		raw     string
		want    kvraft.ReadOptions
		wantErr string
	}{
		{"", kvraft.ReadOptions{}, ""},
		{"consistency=bounded&max_staleness=500ms", kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: 500 * time.Millisecond}, ""},
		{"max_staleness=1s&consistency=bounded", kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: time.Second}, ""},
		{"consistency=session&index=7", kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: 7}, ""},
		{"consistency=eventual", kvraft.ReadOptions{Consistency: kvraft.Eventual}, ""},
		{"consistency=linearizable&other=x", kvraft.ReadOptions{}, ""},
		{"consistency=eventual&consistency=strong", kvraft.ReadOptions{Consistency: kvraft.Eventual}, ""}, // the first value counts
		{"consistency=&consistency=strong", kvraft.ReadOptions{}, ""},
		{"consistency", kvraft.ReadOptions{}, ""},
		{"&&consistency=eventual&", kvraft.ReadOptions{Consistency: kvraft.Eventual}, ""},
		{"consistency=bounded&max_staleness=1.5%C2%B5s", kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: 1500 * time.Nanosecond}, ""},
		{"consistenc%79=eventual", kvraft.ReadOptions{Consistency: kvraft.Eventual}, ""},
		{"consistency=eventual;index=3", kvraft.ReadOptions{}, ""}, // a segment with a semicolon is dropped
		{"consistency=%zz&consistency=eventual", kvraft.ReadOptions{Consistency: kvraft.Eventual}, ""},
		{"consistency=strong", kvraft.ReadOptions{}, "unknown consistency"},
		{"consistency=bounded", kvraft.ReadOptions{}, "positive max staleness"},
		{"consistency=bounded&max_staleness=soon", kvraft.ReadOptions{}, "max_staleness"},
		{"consistency=bounded&max_staleness=-1s", kvraft.ReadOptions{}, "max_staleness"},
		{"consistency=session", kvraft.ReadOptions{}, "needs an index"},
		{"consistency=session&index=0", kvraft.ReadOptions{}, "index"},
		{"consistency=session+&index=1", kvraft.ReadOptions{}, "unknown consistency"},      // + is a space
		{strings.Repeat("a=1&", 10000) + "consistency=eventual", kvraft.ReadOptions{}, ""}, // over net/url's parameter limit: no options
	}
	for _, tt := range tests {
		name := tt.raw
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			sameReadOptions(t, tt.raw)
			got, err := readQueryOptions(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzReadQueryOptions(f *testing.F) {
	for _, s := range []string{"consistency=bounded&max_staleness=500ms", "consistency=session&index=7", "index=%31&consistency=session",
		"consistency=eventual;x", "a=b&&c", "max_staleness=1h&consistency=bounded&consistency=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) { sameReadOptions(t, raw) })
}

func TestUnescapeKey(t *testing.T) {
	tests := []string{"", "a", "bench%2F00000042", "a/b", "x%252Fy", "sp%20ace+plus", "%FF%00", "%e2%82%ac", "%", "a%", "a%2", "a%zz", "%2g", "100%"}
	for _, raw := range tests {
		got, err := unescapeKey(raw)
		want, wantErr := url.PathUnescape(raw)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Errorf("unescapeKey(%q): error %v, want %v", raw, err, wantErr)
			continue
		}
		if err == nil && !bytes.Equal(got, []byte(want)) {
			t.Errorf("unescapeKey(%q) = %q, want %q", raw, got, want)
		}
	}
}

func FuzzUnescapeKey(f *testing.F) {
	f.Add("bench%2F00000042")
	f.Add("%FF%0")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := unescapeKey(raw)
		want, wantErr := url.PathUnescape(raw)
		if (err == nil) != (wantErr == nil) || (err == nil && !bytes.Equal(got, []byte(want))) {
			t.Fatalf("unescapeKey(%q) = %q, %v; url.PathUnescape: %q, %v", raw, got, err, want, wantErr)
		}
	})
}

func TestSetValueHeaders(t *testing.T) {
	tests := []struct {
		name string
		res  kvraft.GetResult
		want http.Header
	}{
		{"found", kvraft.GetResult{Value: []byte("hello"), Found: true, ModIndex: 7, Index: 1234},
			http.Header{IndexHeader: {"1234"}, ModIndexHeader: {"7"}, "Content-Type": {MediaValue}, "Content-Length": {"5"}}},
		{"empty value", kvraft.GetResult{Value: []byte{}, Found: true, ModIndex: 9, Index: 9},
			http.Header{IndexHeader: {"9"}, ModIndexHeader: {"9"}, "Content-Type": {MediaValue}, "Content-Length": {"0"}}},
		{"absent", kvraft.GetResult{Index: 42}, http.Header{IndexHeader: {"42"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			setValueHeaders(h, tt.res)
			if !reflect.DeepEqual(h, tt.want) {
				t.Fatalf("headers %v, want %v", h, tt.want)
			}
			// A header added later must not change another's value.
			h.Add(IndexHeader, "x")
			if tt.res.Found && h.Get(ModIndexHeader) != tt.want.Get(ModIndexHeader) {
				t.Fatalf("adding to %s changed %s: %v", IndexHeader, ModIndexHeader, h)
			}
		})
	}
}

// generalGetURL is the URL Client.Get built before getURL.
func generalGetURL(c *Client, key []byte, opts kvraft.ReadOptions) string {
	u := c.Endpoint + keyPath(key)
	if q := readQuery(opts); len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func TestGetURL(t *testing.T) {
	c := NewClient("http://127.0.0.1:7371/")
	keys := []string{"k", "bench/00000042", "a b+c?d#e%f;g,h", "\xff\x00é", "-_.~$&+:=@", "/"}
	opts := []kvraft.ReadOptions{
		{},
		{Consistency: kvraft.Bounded, MaxStaleness: 500 * time.Millisecond},
		{Consistency: kvraft.Bounded, MaxStaleness: 1500 * time.Nanosecond}, // "1.5µs": escaped
		{Consistency: kvraft.Session, MinIndex: 18446744073709551615},
		{Consistency: kvraft.Eventual},
		{Consistency: kvraft.Linearizable, MaxStaleness: time.Second, MinIndex: 3},
	}
	for _, k := range keys {
		for _, o := range opts {
			if got, want := c.getURL([]byte(k), o), generalGetURL(c, []byte(k), o); got != want {
				t.Errorf("getURL(%q, %+v) = %q, want %q", k, o, got, want)
			}
		}
	}
}

func FuzzGetURL(f *testing.F) {
	f.Add([]byte("bench/00000042"), int64(500*time.Millisecond), uint64(0))
	f.Add([]byte("\x00 %/?"), int64(1500), uint64(7))
	f.Fuzz(func(t *testing.T, key []byte, stale int64, index uint64) {
		c := NewClient("http://h")
		o := kvraft.ReadOptions{Consistency: kvraft.Consistency(index % 4), MaxStaleness: time.Duration(stale), MinIndex: index}
		if got, want := c.getURL(key, o), generalGetURL(c, key, o); got != want {
			t.Fatalf("getURL(%q, %+v) = %q, want %q", key, o, got, want)
		}
	})
}

// chunkReader returns a chunk a Read, then io.EOF.
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestReadValue(t *testing.T) {
	big := strings.Repeat("x", command.MaxValueSize+10)
	tests := []struct {
		name    string
		chunks  []string
		n       int64
		want    string
		wantErr string
	}{
		{"exact", []string{"hello"}, 5, "hello", ""},
		{"in pieces", []string{"he", "ll", "o"}, 5, "hello", ""},
		{"empty", nil, 0, "", ""},
		{"unknown length", []string{"he", "llo"}, -1, "hello", ""},
		{"short", []string{"hel"}, 5, "", "unexpected EOF"},
		{"long", []string{"hello!"}, 5, "", "longer than its Content-Length 5"},
		{"declared over the limit", []string{big}, int64(len(big)), big[:command.MaxValueSize+1], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readValue(&chunkReader{chunks: slices.Clone(tt.chunks)}, tt.n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readValue = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("readValue = %d bytes, %v; want %d bytes", len(got), err, len(tt.want))
			}
		})
	}
}
