package kvhttp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/pennyhq/penny/kvraft"
)

// Keys in JSON. A JSON string cannot carry bytes that are not UTF-8 (the
// decoder silently replaces them with U+FFFD), so a key travels as
// "key" (a JSON string) when it is valid UTF-8 and as "key_b64" (standard
// base64 with padding) otherwise; never both. Requests may use key_b64 for
// any key. Values are always base64 ("value"), as before.

// encodeKey returns the JSON form of key: a string when it is valid UTF-8,
// else its base64 bytes.
func encodeKey(key []byte) (s string, b64 []byte) {
	if utf8.Valid(key) {
		return string(key), nil
	}
	return "", key
}

// decodeKey returns the key of a request's "key" or "key_b64" field; what
// names the field's owner in errors.
func decodeKey(s string, b64 []byte, what string) ([]byte, error) {
	switch {
	case s != "" && b64 != nil:
		return nil, fmt.Errorf("%w: %s: key and key_b64 both set; use one", kvraft.ErrInvalid, what)
	case b64 != nil:
		return b64, nil
	}
	return []byte(s), nil
}

// errNotUTF8 refuses a JSON body that is not UTF-8: the JSON decoder would
// alter its strings rather than fail.
var errNotUTF8 = fmt.Errorf("%w: body is not valid UTF-8 JSON; send keys that are not UTF-8 as key_b64", kvraft.ErrInvalid)

// itemJSON is the wire form of Item.
type itemJSON struct {
	Key      *string `json:"key,omitempty"`
	KeyB64   []byte  `json:"key_b64,omitempty"`
	Value    []byte  `json:"value"`
	ModIndex uint64  `json:"mod_index"`
}

// MarshalJSON writes the key as "key" when it is valid UTF-8 and as
// "key_b64" otherwise.
func (it Item) MarshalJSON() ([]byte, error) {
	out := itemJSON{Value: it.Value, ModIndex: it.ModIndex}
	if it.Value == nil {
		out.Value = []byte{}
	}
	if utf8.ValidString(it.Key) {
		k := it.Key
		out.Key = &k
	} else {
		out.KeyB64 = []byte(it.Key)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads either form of the key.
func (it *Item) UnmarshalJSON(b []byte) error {
	var in itemJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	switch {
	case in.Key != nil && in.KeyB64 != nil:
		return errors.New("kvhttp: item has both key and key_b64")
	case in.Key != nil:
		it.Key = *in.Key
	case in.KeyB64 != nil:
		it.Key = string(in.KeyB64)
	default:
		return errors.New("kvhttp: item has no key")
	}
	it.Value, it.ModIndex = in.Value, in.ModIndex
	return nil
}

// Continue tokens: the next key of a paged range, base64 (URL alphabet,
// no padding) so that any key fits in a query parameter. Clients pass it
// back as it is.

func encodeContinue(key []byte) string { return base64.RawURLEncoding.EncodeToString(key) }

func decodeContinue(tok string) ([]byte, error) {
	k, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("%w: continue token %q is not one this API issued", kvraft.ErrInvalid, tok)
	}
	return k, nil
}
