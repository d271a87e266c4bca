package pricing

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string) (int, Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	var resp Response
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, target, err, rec.Body)
		}
	}
	return rec.Code, resp, rec.Body.String()
}

// TestHandler checks GET /v1/pricing: the effective prices and where they
// come from, a refusal while one stands, and nothing but GET.
func TestHandler(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pricing.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(header + "currency: EUR\ndefaults: {cpuCoreHour: 0.03, ramGiBHour: 0.004, spotCPUCoreHour: 0.006, spotRAMGiBHour: 0.0008, " +
		"egressInternetGiB: 0.1, egressClusterGiB: 0.01}\nnodes: [{instanceType: m5.xlarge, hourlyPrice: 0.18}]\n")
	mem := 0.005
	w, err := NewWatcher(Config{Path: path, Overrides: Overrides{RAMGiBHour: &mem}})
	if err != nil {
		t.Fatal(err)
	}
	h := w.Handler()

	code, resp, body := get(t, h, http.MethodGet, Path)
	if code != http.StatusOK || resp.Source != SourceFile || resp.File != path || len(resp.SHA256) != 64 || resp.LoadedAt.IsZero() || resp.Refused != nil {
		t.Fatalf("GET: %d\n%s", code, body)
	}
	p := resp.Pricing
	if p == nil || p.APIVersion != APIVersion || p.Kind != Kind || p.Currency != "EUR" || *p.Defaults.CPUCoreHour != 0.03 || *p.Defaults.RAMGiBHour != 0.005 ||
		len(p.Nodes) != 1 || p.Nodes[0].CapacityType != CapacityOnDemand || resp.Overrides == nil || *resp.Overrides.RAMGiBHour != 0.005 {
		t.Errorf("GET: %s", body)
	}
	// What GET shows is a pricing file that resolves to the same prices.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b, Overrides{})
	if err != nil {
		t.Fatalf("the effective file is refused: %v\n%s", err, b)
	}
	facts := Facts{InstanceType: "m5.xlarge", CPUCores: 4, MemoryBytes: 16 << 30}
	if got, want := again.Rates(facts), w.Rates(facts); got != want {
		t.Errorf("the effective file prices %+v, the watcher %+v", got, want)
	}

	write(header + "currency: EURO\n")
	if err := w.Reload(); err == nil {
		t.Fatal("bad currency accepted")
	}
	_, resp, body = get(t, h, http.MethodGet, Path)
	if resp.Refused == nil || !strings.Contains(resp.Refused.Error, `currency: "EURO" is not an ISO 4217 code`) || resp.Pricing.Currency != "EUR" {
		t.Errorf("GET after a refusal: %s", body)
	}

	if code, _, _ := get(t, h, http.MethodPost, Path); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
	if code, _, _ := get(t, h, http.MethodGet, Path+"?node=a"); code != http.StatusBadRequest {
		t.Errorf("GET with a parameter: %d", code)
	}

	d, err := NewWatcher(Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, resp, body = get(t, d.Handler(), http.MethodGet, Path)
	if resp.Source != SourceDefault || resp.File != "" || *resp.Pricing.Defaults.SpotRAMGiBHour != DefaultSpotRAMGiBHour || resp.Overrides != nil {
		t.Errorf("GET without a file: %s", body)
	}
}
