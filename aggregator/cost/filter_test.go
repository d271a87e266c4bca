package cost

import (
	"strings"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	api := &Properties{Cluster: "cluster-one", Node: "od", Namespace: "shop", Pod: "api-7f9", Container: "api",
		ControllerKind: "deployment", Controller: "api", Labels: map[string]string{"app.kubernetes.io/name": "api", "team": "payments"}}
	bare := &Properties{Cluster: "cluster-one", Node: "spot", Namespace: "batch", Pod: "once", Container: "main"}
	for _, tc := range []struct {
		filter    string
		api, bare bool
	}{
		{``, true, true},
		{`namespace:"shop"`, true, false},
		{`namespace:"shop","batch"`, true, true},
		{`namespace!:"shop"`, false, true},
		{`namespace!:"shop","batch"`, false, false},
		{`Namespace:"shop"`, true, false},
		{`node:"spot"`, false, true},
		{`cluster:"cluster-one"`, true, true},
		{`pod~:"7f"`, true, false},
		{`pod!~:"7f"`, false, true},
		{`pod<~:"api-"`, true, false},
		{`pod!<~:"api-"`, false, true},
		{`pod~>:"ce"`, false, true},
		{`pod!~>:"ce"`, true, false},
		{`container:"main"`, false, true},
		{`controllerKind:"deployment"`, true, false},
		{`controllerName:"api"`, true, false},
		{`controllerName:"__unallocated__"`, false, true},
		{`label[team]:"payments"`, true, false},
		{`label[team]:"__unallocated__"`, false, true},
		{`label[team]!:"payments"`, false, true},
		{`label[app.kubernetes.io/name]:"api"`, true, false},
		{`label[app_kubernetes_io_name]:"api"`, true, false},
		{`label:"team"`, true, false},
		{`label!:"team"`, false, true},
		{`label<~:"app"`, true, false},
		{`label~>:"_name"`, true, false},
		{`tenant:"batch"`, false, true},
		{`namespace:"shop"+label[team]:"payments"`, true, false},
		{`namespace:"shop"+label[team]:"data"`, false, false},
		{`namespace:"shop" | node:"spot"`, true, true},
		{`(namespace:"shop"|namespace:"batch")+pod~:"api"`, true, false},
		{`((node:"od"))`, true, false},
		{`node:"spot"+(pod:"x"|container:"main")`, false, true},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Errorf("%s: %v", tc.filter, err)
			continue
		}
		if got := f.Match(api, "acme"); got != tc.api {
			t.Errorf("%s on api: %v, want %v", tc.filter, got, tc.api)
		}
		if got := f.Match(bare, "batch"); got != tc.bare {
			t.Errorf("%s on bare: %v, want %v", tc.filter, got, tc.bare)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, tc := range []struct{ filter, want string }{
		{`namespace="a"`, "unexpected character"},
		{`namespace`, "expected an operator"},
		{`namespace:`, "expected a quoted value"},
		{`namespace:a`, "expected a quoted value"},
		{`namespace:"a`, "not closed"},
		{`label[app:"a"`, "not closed"},
		{`label[]:"a"`, "empty label key"},
		{`pod[x]:"a"`, "only label takes a [key]"},
		{`label:""`, "cannot be empty"},
		{`bogus:"a"`, `unknown field "bogus"`},
		{`annotation[a]:"b"`, "not supported"},
		{`services:"a"`, "not supported"},
		{`team:"a"`, "not supported"},
		{`namespace:"a"+node:"b"|pod:"c"`, "mixing + and |"},
		{`(namespace:"a"`, "expected )"},
		{`namespace:"a")`, "unexpected"},
		{`namespace:"a"+`, "expected a field"},
		{`+namespace:"a"`, "expected a field"},
		{`namespace:"a" node:"b"`, "unexpected"},
		{strings.Repeat("(", MaxFilterDepth+1) + `pod:"a"` + strings.Repeat(")", MaxFilterDepth+1), "nested deeper"},
		{`pod:"` + strings.Repeat("a", MaxFilterBytes) + `"`, "longer than"},
	} {
		_, err := ParseFilter(tc.filter)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.filter, err, tc.want)
		}
	}
}

// FuzzParseFilter: filters come from the network; none may panic, and a
// filter that parses evaluates.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`namespace:"a"`, `(pod~:"x"|label[app]!:"y","z")+tenant:"t"`, `label:"a"`, `((`, `pod!<~:"a"`} {
		f.Add(s)
	}
	p := &Properties{Namespace: "a", Pod: "x", Labels: map[string]string{"app": "y"}}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			return
		}
		flt.Match(p, "t")
		if flt != nil && flt.String() == "" {
			t.Fatalf("%q parsed into an empty filter", s)
		}
	})
}
