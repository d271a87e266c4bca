package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
	yamlv3 "sigs.k8s.io/yaml/goyaml.v3"
)

// ErrTooLarge marks a pricing file over the size limit.
var ErrTooLarge = errors.New("pricing: file too large")

// Decode decodes a pricing file strictly: it refuses input over
// MaxFileBytes, anything but one YAML document holding one mapping,
// duplicate keys, unknown fields and values of the wrong type, and names
// every such field in one error (each problem a *FieldError). It neither
// completes nor validates the file.
func Decode(data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(data), MaxFileBytes)
	}
	if err := oneDocument(data); err != nil {
		return nil, err
	}
	// YAMLToJSONStrict refuses duplicate keys.
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fieldErr("", "not valid YAML: %v", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fieldErr("", "not valid YAML: %v", err)
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, fieldErr("", "a pricing file is a mapping (apiVersion: %s, kind: %s, ...), not %s", APIVersion, Kind, jsonKind(raw))
	}
	if errs := checkShape(reflect.TypeFor[File](), raw, ""); len(errs) > 0 {
		return nil, joinProblems(errs)
	}
	// The shape is right: this decoding cannot find anything new, but it is
	// strict all the same.
	var f File
	dec = json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fieldErr("", "%v", err)
	}
	return &f, nil
}

// oneDocument refuses a stream of several YAML documents, of which the
// conversion to JSON would read only the first.
func oneDocument(data []byte) error {
	d := yamlv3.NewDecoder(bytes.NewReader(data))
	var n yamlv3.Node
	if err := d.Decode(&n); err != nil {
		if err == io.EOF {
			return fieldErr("", "empty file: a pricing file has apiVersion %s and kind %s", APIVersion, Kind)
		}
		return fieldErr("", "not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	switch err := d.Decode(&n); {
	case err == io.EOF:
		return nil
	case err != nil:
		return fieldErr("", "not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	default:
		return fieldErr("", "more than one YAML document: a pricing file is one")
	}
}

// checkShape compares a decoded JSON value with the Go type it is to
// decode into, and returns a problem for every unknown field (JSON names
// match exactly, where encoding/json would ignore case) and every value of
// the wrong type. A null value is an absent one.
func checkShape(t reflect.Type, v any, path string) []error {
	if v == nil {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return []error{fieldErr(path, "a mapping, not %s", jsonKind(v))}
		}
		fields := make(map[string]reflect.Type, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = f.Type
		}
		var errs []error
		for _, k := range slices.Sorted(maps.Keys(m)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				errs = append(errs, fieldErr(p, "unknown field"))
				continue
			}
			errs = append(errs, checkShape(ft, m[k], p)...)
		}
		return errs
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return []error{fieldErr(path, "a list, not %s", jsonKind(v))}
		}
		var errs []error
		for i, e := range l {
			errs = append(errs, checkShape(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case reflect.String:
		if _, ok := v.(string); !ok {
			return []error{fieldErr(path, "a string, not %s", jsonKind(v))}
		}
	case reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return []error{fieldErr(path, "a number, not %s", jsonKind(v))}
		}
		if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			return []error{fieldErr(path, "%s is out of range", n)}
		}
	default:
		return []error{fieldErr(path, "field of unexpected type %s", t)}
	}
	return nil
}

// jsonKind names the kind of a decoded JSON value, for errors.
func jsonKind(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// ReadFile reads the file at path, refusing one over MaxFileBytes before
// reading more than MaxFileBytes+1 bytes of it.
func ReadFile(path string) ([]byte, error) {
	const limit = MaxFileBytes
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}
