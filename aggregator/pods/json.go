package pods

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// AppendJSON appends ps as encoding/json encodes them (json.Marshal,
// HTML escaped), byte for byte, without reflection or sorting each pod's
// metrics: a namespace's answer is thousands of pods of sixteen metrics
// each, which encoding/json took longer to write than the read took to
// make (docs/custom-metrics.md). It fails where encoding/json does, on a
// metric that is not a number.
func AppendJSON(b []byte, ps []Pod) ([]byte, error) {
	if ps == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendPod(b, &ps[i]); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

func appendPod(b []byte, p *Pod) ([]byte, error) {
	b = appendString(append(b, `{"namespace":`...), p.Namespace)
	b = appendString(append(b, `,"name":`...), p.Name)
	b = appendString(append(b, `,"uid":`...), p.UID)
	b = appendString(append(b, `,"node":`...), p.Node)
	if len(p.Labels) > 0 {
		b = appendStringMap(append(b, `,"labels":`...), p.Labels)
	}
	if p.QOSClass != "" {
		b = appendString(append(b, `,"qos_class":`...), p.QOSClass)
	}
	if p.OwnerKind != "" {
		b = appendString(append(b, `,"owner_kind":`...), p.OwnerKind)
	}
	if p.OwnerName != "" {
		b = appendString(append(b, `,"owner_name":`...), p.OwnerName)
	}
	b = append(b, `,"containers":`...)
	if p.Containers == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, c := range p.Containers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{`,"request_cpu_millis":`, p.RequestCPUMillis}, {`,"request_memory_bytes":`, p.RequestMemoryBytes},
		{`,"limit_cpu_millis":`, p.LimitCPUMillis}, {`,"limit_memory_bytes":`, p.LimitMemoryBytes}} {
		if f.v != 0 {
			b = strconv.AppendInt(append(b, f.name...), f.v, 10)
		}
	}
	t, err := p.Time.MarshalJSON()
	if err != nil {
		return b, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	b = append(append(b, `,"time":`...), t...)
	if b, err = appendFloat(append(b, `,"window_seconds":`...), p.WindowSeconds); err != nil {
		return b, fmt.Errorf("pod %s/%s: window: %w", p.Namespace, p.Name, err)
	}
	b = append(b, `,"metrics":`...)
	if b, err = appendMetrics(b, p.Metrics); err != nil {
		return b, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return append(b, '}'), nil
}

// appendMetrics appends m as encoding/json does a map: keys sorted. The
// names of Metrics are sorted once; a map with another name is sorted
// as it is.
func appendMetrics(b []byte, m map[string]float64) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	keys := make([]string, 0, 32)
	for _, k := range sortedNames() {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	if len(keys) != len(m) {
		keys = keys[:0]
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendFloat(append(appendString(b, k), ':'), m[k]); err != nil {
			return b, fmt.Errorf("metric %s: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// sortedNames are the names of Metrics, sorted.
var sortedNames = sync.OnceValue(func() []string {
	names := make([]string, len(Metrics))
	for i := range Metrics {
		names[i] = Metrics[i].Name
	}
	slices.Sort(names)
	return names
})

// appendStringMap appends m as encoding/json does a map: keys sorted.
func appendStringMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(append(appendString(b, k), ':'), m[k])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string as encoding/json does (HTML
// escaped): a string of printable ASCII but the quote, the backslash and
// <, >, & is copied; one with anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// plain tells the bytes a JSON string holds as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

// appendFloat appends v as encoding/json writes a float64: the shortest
// decimal that reads back as v, in exponent form below 1e-6 and from 1e21
// on (two exponent digits only when needed); NaN and the infinities are
// errors.
func appendFloat(b []byte, v float64) ([]byte, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(v, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
