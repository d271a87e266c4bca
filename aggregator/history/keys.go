package history

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pennyhq/penny/aggregator/model"
)

// Sentinel errors.
var (
	// ErrCorrupt means a stored record or key does not decode.
	ErrCorrupt = errors.New("history: corrupt record")
	// ErrInvalid means a config or request is invalid.
	ErrInvalid = errors.New("history: invalid")
)

// Keys. Times are unix seconds, zero-padded to ten digits, so that keys
// sort by time and a window is one range:
//
//	penny/v1/hist/m/<start>/<node>       a node's minute record (or a longer
//	                                     span's part within one hour)
//	penny/v1/hist/h/<hour>/<node>        a node's hour record
//	penny/v1/hist/c/<node>/<ref:016x>    a container's identity
//	penny/v1/hist/cur/<node>             the roller's cursor of a node
const (
	prefix        = "penny/v1/hist/"
	minutePrefix  = prefix + "m/"
	hourPrefix    = prefix + "h/"
	identityPart  = prefix + "c/"
	cursorPrefix  = prefix + "cur/"
	timeDigits    = 10
	maxTimeSecond = 9_999_999_999
)

func timeKey(p string, sec int64, node string) []byte {
	return fmt.Appendf(nil, "%s%010d/%s", p, sec, node)
}

// MinuteKey is the key of node's record of the span that starts at start
// (unix seconds).
func MinuteKey(start int64, node string) []byte { return timeKey(minutePrefix, start, node) }

// HourKey is the key of node's record of the hour that starts at hour.
func HourKey(hour int64, node string) []byte { return timeKey(hourPrefix, hour, node) }

// timeBound is the first key of records that start at sec or later.
func timeBound(p string, sec int64) []byte {
	sec = min(max(sec, 0), maxTimeSecond)
	return fmt.Appendf(nil, "%s%010d/", p, sec)
}

// parseTimeKey splits a minute or hour key.
func parseTimeKey(p string, k []byte) (sec int64, node string, err error) {
	rest, ok := strings.CutPrefix(string(k), p)
	if !ok || len(rest) < timeDigits+2 || rest[timeDigits] != '/' {
		return 0, "", fmt.Errorf("%w: key %q", ErrCorrupt, k)
	}
	sec, err = strconv.ParseInt(rest[:timeDigits], 10, 64)
	node = rest[timeDigits+1:]
	if err != nil || sec < 0 || model.ValidNode(node) != nil {
		return 0, "", fmt.Errorf("%w: key %q", ErrCorrupt, k)
	}
	return sec, node, nil
}

// IdentityKey is the key of a container's identity on node.
func IdentityKey(node string, ref uint64) []byte {
	return fmt.Appendf(nil, "%s%s/%016x", identityPart, node, ref)
}

func identityPrefix(node string) []byte { return []byte(identityPart + node + "/") }

func parseIdentityKey(k []byte) (node string, ref uint64, err error) {
	rest, ok := strings.CutPrefix(string(k), identityPart)
	if ok {
		var r string
		node, r, ok = strings.Cut(rest, "/")
		if ok && len(r) == 16 {
			if ref, err = strconv.ParseUint(r, 16, 64); err == nil {
				return node, ref, nil
			}
		}
	}
	return "", 0, fmt.Errorf("%w: identity key %q", ErrCorrupt, k)
}

// CursorKey is the key of node's cursor.
func CursorKey(node string) []byte { return []byte(cursorPrefix + node) }

// Kinds of records, for metrics.
const (
	KindMinute   = "minute"
	KindHour     = "hour"
	KindIdentity = "identity"
	KindCursor   = "cursor"
)

var kindPrefixes = []struct{ kind, prefix string }{
	{KindMinute, minutePrefix}, {KindHour, hourPrefix}, {KindIdentity, identityPart}, {KindCursor, cursorPrefix},
}
