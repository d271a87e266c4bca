package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pennyhq/penny/internal/watchfile"
)

// namespaceMap gives namespaces from a map; a missing one is an error,
// as an API server that cannot be reached.
type namespaceMap map[string]*corev1.Namespace

func (m namespaceMap) Namespace(_ context.Context, name string) (*corev1.Namespace, error) {
	if ns := m[name]; ns != nil {
		return ns, nil
	}
	return nil, fmt.Errorf("namespace %s: %w", name, errors.New("connection refused"))
}

func newTestServer(t *testing.T, h *Handler) (*httptest.Server, *Metrics) {
	t.Helper()
	if h.Metrics == nil {
		h.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if h.Rules == nil {
		h.Rules = DefaultRules
	}
	if h.Namespaces == nil {
		h.Namespaces = namespaceMap{"shop": namespace(map[string]string{"cost.tenant-id": "acme"}, nil)}
	}
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, h.Metrics
}

func review(t *testing.T, kind metav1.GroupVersionKind, op admissionv1.Operation, ns string, obj any) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("uid-1"), Kind: kind, Operation: op, Namespace: ns,
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Object:   runtime.RawExtension{Raw: raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

func post(t *testing.T, srv *httptest.Server, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+MutatePath, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestHandler(t *testing.T) {
	pod := barePod(nil)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		patch       string // the answer's patch; "" for none
		result      string // the admissions_total label counted
	}{
		{name: "a pod CREATE is stamped", contentType: "application/json", body: review(t, podKind, admissionv1.Create, "shop", pod),
			status: 200, patch: `[{"op":"add","path":"/metadata/labels","value":{"cost.tenant-id":"acme"}}]`, result: resultPatched},
		{name: "a pod that has the label", contentType: "application/json; charset=utf-8",
			body:   review(t, podKind, admissionv1.Create, "shop", barePod(map[string]string{"cost.tenant-id": "x"})),
			status: 200, result: resultUnchanged},
		{name: "an UPDATE is not stamped", contentType: "application/json", body: review(t, podKind, admissionv1.Update, "shop", pod),
			status: 200, result: resultIgnored},
		{name: "not a pod", contentType: "application/json",
			body:   review(t, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, admissionv1.Create, "shop", pod),
			status: 200, result: resultIgnored},
		{name: "a namespace that cannot be read: allowed unchanged", contentType: "application/json",
			body: review(t, podKind, admissionv1.Create, "unknown", pod), status: 200, result: resultNoNamespace},
		{name: "not JSON", contentType: "text/plain", body: []byte("x"), status: 415, result: resultRefused},
		{name: "malformed", contentType: "application/json", body: []byte(`{"request":`), status: 400, result: resultRefused},
		{name: "no request", contentType: "application/json", body: []byte(`{"kind":"AdmissionReview"}`), status: 400, result: resultRefused},
		{name: "too large", contentType: "application/json",
			body:   []byte(`{"request":{"uid":"` + strings.Repeat("x", 128<<10) + `"}}`),
			status: 413, result: resultRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, m := newTestServer(t, &Handler{MaxRequestBytes: 64 << 10})
			status, body := post(t, srv, tt.contentType, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if got := testutil.ToFloat64(m.admissions.WithLabelValues(tt.result)); got != 1 {
				t.Errorf("admissions_total{result=%q} = %v, want 1", tt.result, got)
			}
			if status != 200 {
				var e struct {
					Code  int    `json:"code"`
					Error string `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Code != status || e.Error == "" {
					t.Errorf("error answer %s: %v", body, err)
				}
				return
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			r := out.Response
			if out.Kind != "AdmissionReview" || out.APIVersion != "admission.k8s.io/v1" || r == nil || r.UID != "uid-1" || !r.Allowed {
				t.Fatalf("answer %s", body)
			}
			if string(r.Patch) != tt.patch {
				t.Errorf("patch %s, want %s", r.Patch, tt.patch)
			}
			if (r.PatchType != nil) != (tt.patch != "") {
				t.Errorf("patchType %v with patch %s", r.PatchType, r.Patch)
			}
		})
	}
}

func TestHandlerMethod(t *testing.T) {
	srv, _ := newTestServer(t, &Handler{})
	resp, err := srv.Client().Get(srv.URL + MutatePath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
}

// TestHandlerRequiresClientCert: with RequireClientCert, a review without
// a verified client certificate is refused before it is read.
func TestHandlerRequiresClientCert(t *testing.T) {
	srv, m := newTestServer(t, &Handler{RequireClientCert: true})
	status, body := post(t, srv, "application/json", review(t, podKind, admissionv1.Create, "shop", barePod(nil)))
	if status != http.StatusUnauthorized {
		t.Fatalf("status %d: %s", status, body)
	}
	if got := testutil.ToFloat64(m.admissions.WithLabelValues(resultRefused)); got != 1 {
		t.Errorf("refused %v", got)
	}
}

// TestRulesReload: the rules file is read again when it changes; a file
// that does not parse keeps the last good rules and is counted.
func TestRulesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(s string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Hour)
	write("labels:\n- key: tier\n  from: [{value: gold}]\n", start)
	m := NewMetrics(prometheus.NewRegistry())
	rules, err := loadRules(path, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func() string {
		t.Helper()
		_, s := Patch(rules(), barePod(nil), nil)
		if len(s) != 1 {
			t.Fatalf("stamps %+v", s)
		}
		return s[0].Key + "=" + s[0].Value
	}
	if got := stamp(); got != "tier=gold" {
		t.Fatalf("stamped %s", got)
	}
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * watchfile.CheckEvery)
		for stamp() != want {
			if time.Now().After(deadline) {
				t.Fatalf("still stamps %s, want %s", stamp(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	write("labels:\n- key: tier\n  from: [{value: silver}]\n", start.Add(time.Minute))
	wait("tier=silver")
	write("labels:\n- key: tier\n  from: [{value: 'not valid'}]\n", start.Add(2*time.Minute))
	deadline := time.Now().Add(5 * watchfile.CheckEvery)
	for testutil.ToFloat64(m.reloads.WithLabelValues("refused")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bad file was not refused")
		}
		stamp()
		time.Sleep(50 * time.Millisecond)
	}
	if got := stamp(); got != "tier=silver" {
		t.Fatalf("after a bad file, stamps %s, want the last good rules' tier=silver", got)
	}
	if ok := testutil.ToFloat64(m.reloads.WithLabelValues("ok")); ok != 2 {
		t.Errorf("reloads ok %v, want 2", ok)
	}
	if _, err := loadRules(path, m, nil); err == nil || !errors.Is(err, ErrBadRules) {
		t.Errorf("starting on a bad file: %v, want ErrBadRules", err)
	}
}

func FuzzHandler(f *testing.F) {
	f.Add([]byte(`{"request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop","object":{}}}`))
	f.Add([]byte(`{"request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop",` +
		`"object":{"metadata":{"labels":{"a":"b"},"ownerReferences":[{"kind":"ReplicaSet","name":"x-1","controller":true}]}}}}`))
	f.Add([]byte(`{"request":null}`))
	h := &Handler{Rules: DefaultRules, Metrics: NewMetrics(prometheus.NewRegistry()),
		Namespaces: namespaceMap{"shop": namespace(map[string]string{"cost.tenant-id": "acme"}, nil)}}
	if err := h.Init(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, MutatePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			return
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil || !out.Response.Allowed {
			t.Fatalf("200 with %s (%v)", w.Body.Bytes(), err)
		}
	})
}
