package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/server"
)

func getPricing(t *testing.T, base string) pricing.Response {
	t.Helper()
	resp, err := h2c().Get(base + pricing.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", pricing.Path, resp.Status, b)
	}
	var r pricing.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPricing runs a replica on a pricing file: GET /v1/pricing and
// /metrics show it, a change comes in force, and Stop waits for the
// watcher (the race detector sees the rest).
func TestPricing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pricing.yaml")
	write := func(cpu string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("apiVersion: penny.dev/v1\nkind: Pricing\ndefaults:\n  cpuCoreHour: "+cpu+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("0.05")
	cfg := config(t.TempDir(), "127.0.0.1:0")
	cfg.Pricing = pricing.Config{Path: path, Interval: 10 * time.Millisecond}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	base := "http://" + s.Addr.String()
	if r := getPricing(t, base); r.Source != pricing.SourceFile || r.File != path || *r.Pricing.Defaults.CPUCoreHour != 0.05 {
		t.Errorf("GET %s: %+v", pricing.Path, r)
	}
	if r := s.Pricing().Rates(pricing.Facts{}); r.CPUCoreHour != 0.05 || r.Source != pricing.SourceFile {
		t.Errorf("rates %+v", r)
	}
	write("0.06")
	waitFor(t, "the new price in force", func() bool { return *getPricing(t, base).Pricing.Defaults.CPUCoreHour == 0.06 })

	resp, err := h2c().Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`penny_pricing_info{currency="USD",source="file"} 1`, `penny_pricing_reloads_total{result="ok"} 2`,
		`penny_pricing_reloads_total{result="refused"} 0`, "penny_pricing_last_reload_success_timestamp_seconds "} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	s.Stop()
	write("0.07") // nothing reads it any more
	if r := s.Pricing().Rates(pricing.Facts{}); r.CPUCoreHour != 0.06 {
		t.Errorf("after Stop: %+v", r)
	}
}

// TestPricingRefusedAtStart checks that a replica does not start on a bad
// pricing file, and says which field is wrong, before it touches its store.
func TestPricingRefusedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pricing.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: penny.dev/v1\nkind: Pricing\ndefaults: {ramGiBHour: -0.004}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := config(dir, "127.0.0.1:0")
	cfg.Pricing.Path = path
	s, err := server.Start(context.Background(), cfg)
	if err == nil {
		s.Stop()
		t.Fatal("started on a bad pricing file")
	}
	if !errors.Is(err, pricing.ErrInvalid) || !strings.Contains(err.Error(), "defaults.ramGiBHour: negative price -0.004") {
		t.Errorf("error %v", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("the store started: %s has %d entries", dir, len(es))
	}
}
