package kvhttp

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// Item is one pair of a range response. In JSON its key is "key" when it
// is valid UTF-8 and "key_b64" (base64) otherwise; Key holds the exact
// bytes either way.
type Item struct {
	Key   string
	Value []byte
	// ModIndex is the index of the entry that last wrote the key.
	ModIndex uint64
}

// RangeResponse is the body of GET /v1/kv: one page of a range.
type RangeResponse struct {
	Index uint64 `json:"index"`
	Items []Item `json:"items"`
	// More reports that the range goes on past this page; Continue is then
	// the token that reads the next page (the continue parameter).
	More     bool   `json:"more"`
	Continue string `json:"continue,omitempty"`
}

// ParseRange parses prefix, start, end, limit and continue. A continue
// token, which the previous page returned, must lie inside the range; the
// request it gives starts there.
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
	if q.Has("continue") {
		next, err := decodeContinue(q.Get("continue"))
		if err != nil {
			return req, err
		}
		if len(next) > command.MaxKeySize {
			return req, fmt.Errorf("%w: continue token longer than a key", kvraft.ErrInvalid)
		}
		if req.Prefix != nil {
			if !bytes.HasPrefix(next, req.Prefix) {
				return req, fmt.Errorf("%w: continue token outside the prefix", kvraft.ErrInvalid)
			}
			req.Start, req.End, req.Prefix = next, kvstore.PrefixEnd(req.Prefix), nil
		} else {
			if bytes.Compare(next, req.Start) < 0 || req.End != nil && bytes.Compare(next, req.End) >= 0 {
				return req, fmt.Errorf("%w: continue token outside [start, end)", kvraft.ErrInvalid)
			}
			req.Start = next
		}
	}
	return req, nil
}

// rangeKeys answers a page: at most limit pairs and, past the first pair,
// at most maxRange bytes of keys and values. The store hands out its pairs
// without copying them, so asking it for one more than the page holds
// costs nothing and names the next page's first key.
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
	limit := req.Limit
	req.Limit++
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.s.Range(ctx, req, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := RangeResponse{Index: res.Index, Items: make([]Item, 0, min(len(res.Items), limit))}
	var size int64
	for i, kv := range res.Items {
		size += int64(len(kv.Key) + len(kv.Value))
		if i == limit || i > 0 && size > h.maxRange {
			out.More, out.Continue = true, encodeContinue(kv.Key)
			break
		}
		out.Items = append(out.Items, Item{Key: string(kv.Key), Value: kv.Value, ModIndex: kv.ModIndex})
	}
	w.Header().Set(IndexHeader, strconv.FormatUint(res.Index, 10))
	writeJSON(w, http.StatusOK, out)
}
