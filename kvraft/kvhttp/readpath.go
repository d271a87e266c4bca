package kvhttp

import (
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

// The point read (GET /v1/kv/{key}) is the API's hottest route: its key,
// its options and its answer's headers are handled here without the
// general helpers' intermediate maps and copies. Each function gives
// exactly the answer of the general path it stands for (the tests compare
// them).

// readQueryOptions parses a point read's raw query as
// ParseReadOptions(url.ParseQuery(raw)) does, ignoring the parse error as
// http.Request.URL.Query does. A query with nothing to unescape and no
// semicolon (what clients send) is read in place, taking the first value
// of each parameter as url.Values.Get does; any other goes through the
// general path.
func readQueryOptions(raw string) (kvraft.ReadOptions, error) {
	if raw == "" {
		return kvraft.ReadOptions{}, nil
	}
	if strings.ContainsAny(raw, "%+;") || strings.Count(raw, "&") > 16 {
		q, _ := url.ParseQuery(raw)
		return ParseReadOptions(q)
	}
	var c, s, i string
	var haveC, haveS, haveI bool
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "consistency" && !haveC:
			c, haveC = v, true
		case k == "max_staleness" && !haveS:
			s, haveS = v, true
		case k == "index" && !haveI:
			i, haveI = v, true
		}
	}
	return readOptions(c, s, i)
}

// readOptions parses the values of consistency, max_staleness and index
// ("" for an absent one) and validates the result.
func readOptions(c, s, i string) (kvraft.ReadOptions, error) {
	var o kvraft.ReadOptions
	if c != "" {
		var err error
		if o.Consistency, err = kvraft.ParseConsistency(c); err != nil {
			return o, err
		}
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("%w: max_staleness %q must be a positive duration like 500ms", kvraft.ErrInvalid, s)
		}
		o.MaxStaleness = d
	}
	if i != "" {
		n, err := strconv.ParseUint(i, 10, 64)
		if err != nil || n == 0 {
			return o, fmt.Errorf("%w: index %q must be a positive integer", kvraft.ErrInvalid, i)
		}
		o.MinIndex = n
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// unescapeKey percent-decodes a key's escaped path as url.PathUnescape
// does, into the key's own bytes (one allocation). It fails as
// url.PathUnescape does on a malformed escape.
func unescapeKey(raw string) ([]byte, error) {
	n := strings.Count(raw, "%")
	if n == 0 {
		return []byte(raw), nil
	}
	key := make([]byte, 0, max(len(raw)-2*n, 0))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			key = append(key, raw[i])
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			_, err := url.PathUnescape(raw) // its error names the bad escape
			return nil, err
		}
		key = append(key, unhex(raw[i+1])<<4|unhex(raw[i+2]))
		i += 2
	}
	return key, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// setValueHeaders sets the headers of a point read's answer: the applied
// index that served it and, for a key found, its mod index, type and
// length. The header values share one allocation.
func setValueHeaders(h http.Header, res kvraft.GetResult) {
	vals := new([4]string)
	vals[0] = strconv.FormatUint(res.Index, 10)
	h[IndexHeader] = vals[0:1:1]
	if !res.Found {
		return
	}
	vals[1] = strconv.FormatUint(res.ModIndex, 10)
	vals[2] = MediaValue
	vals[3] = strconv.Itoa(len(res.Value))
	h[ModIndexHeader] = vals[1:2:2]
	h["Content-Type"] = vals[2:3:3]
	h["Content-Length"] = vals[3:4:4]
}

// getURL is the URL of a point read of key with opts: the endpoint, the
// key's path (escaped as url.PathEscape does) and the query
// readQuery(opts).Encode() gives, built in one allocation.
func (c *Client) getURL(key []byte, opts kvraft.ReadOptions) string {
	var stale string
	if opts.MaxStaleness > 0 {
		stale = url.QueryEscape(opts.MaxStaleness.String())
	}
	var b strings.Builder
	b.Grow(len(c.Endpoint) + len(kvRoot) + 1 + 3*len(key) + len("?consistency=linearizable&index=18446744073709551615&max_staleness=") + len(stale))
	b.WriteString(c.Endpoint)
	b.WriteString(kvRoot + "/")
	for _, k := range key {
		if shouldEscapeSegment(k) {
			b.WriteByte('%')
			b.WriteByte(upperHex[k>>4])
			b.WriteByte(upperHex[k&15])
		} else {
			b.WriteByte(k)
		}
	}
	// url.Values.Encode sorts by key: consistency, index, max_staleness.
	sep := byte('?')
	param := func(name, value string) {
		b.WriteByte(sep)
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(value)
		sep = '&'
	}
	if opts.Consistency != kvraft.Linearizable {
		param("consistency", url.QueryEscape(opts.Consistency.String()))
	}
	if opts.MinIndex > 0 {
		param("index", strconv.FormatUint(opts.MinIndex, 10))
	}
	if stale != "" {
		param("max_staleness", stale)
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

// shouldEscapeSegment reports whether url.PathEscape escapes c: all but
// the unreserved characters and the reserved ones a path segment may hold
// ($ & + : = @).
func shouldEscapeSegment(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return false
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ':', '=', '@':
		return false
	}
	return true
}

// readValue reads a point read's value: exactly its Content-Length n when
// the answer declares one within the value limit, else up to one byte past
// the limit. It reads the body to its end, so the connection is reused.
func readValue(body io.Reader, n int64) ([]byte, error) {
	if n < 0 || n > command.MaxValueSize {
		return io.ReadAll(io.LimitReader(body, command.MaxValueSize+1))
	}
	v := make([]byte, n)
	if _, err := io.ReadFull(body, v); err != nil {
		return nil, err
	}
	var more [1]byte
	m, err := body.Read(more[:])
	switch {
	case m > 0:
		return nil, fmt.Errorf("value longer than its Content-Length %d", n)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, err
	}
	return v, nil
}
