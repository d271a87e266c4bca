package cost

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"
)

// openCostFields are the keys of OpenCost's AllocationJSON, in its order
// (core/pkg/opencost/allocation_json.go; rawAllocationOnly is omitted when
// empty).
var openCostFields = []string{
	"name", "properties", "window", "start", "end", "minutes", "cpuCores", "cpuCoreRequestAverage",
	"cpuCoreUsageAverage", "cpuCoreHours", "cpuCost", "cpuCostAdjustment", "cpuCostIdle", "cpuEfficiency", "gpuCount",
	"gpuRequestAverage", "gpuUsageAverage", "gpuHours", "gpuCost", "gpuCostAdjustment", "gpuCostIdle", "gpuEfficiency",
	"networkTransferBytes", "networkReceiveBytes", "networkCost", "networkCrossZoneCost", "networkCrossRegionCost",
	"networkInternetCost", "networkCostAdjustment", "loadBalancerCost", "loadBalancerCostAdjustment", "pvBytes",
	"pvByteHours", "pvCost", "pvs", "pvCostAdjustment", "ramBytes", "ramByteRequestAverage", "ramByteUsageAverage",
	"ramByteHours", "ramCost", "ramCostAdjustment", "ramCostIdle", "ramEfficiency", "externalCost", "sharedCost",
	"totalCost", "totalEfficiency", "proportionalAssetResourceCosts", "lbAllocations", "sharedCostBreakdown",
}

// pennyFields are Penny's own, after OpenCost's.
var pennyFields = []string{"requests", "costPer1kRequests"}

// keys returns the keys of a JSON object in order.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var ks []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

func TestResponseJSON(t *testing.T) {
	series, nodes := fixture()
	res := compute(t, "aggregate=namespace&window="+hourWindow, series, nodes)
	b, err := json.Marshal(res.Response())
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(t, b); !slices.Equal(got, []string{"code", "status", "data", "currency"}) {
		t.Errorf("envelope keys %q", got)
	}
	var env struct {
		Code   int
		Status string
		Data   []map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env.Code != http.StatusOK || env.Status != "success" || len(env.Data) != 1 || len(env.Data[0]) != 3 {
		t.Fatalf("envelope %+v", env)
	}
	shop := env.Data[0]["shop"]
	if got, want := keys(t, shop), slices.Concat(openCostFields, pennyFields); !slices.Equal(got, want) {
		t.Errorf("allocation keys\n%q\nwant OpenCost's, then Penny's\n%q", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal(shop, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "shop", "start": "2026-03-18T10:00:00Z", "end": "2026-03-18T11:00:00Z", "minutes": 60.0,
		"cpuCoreHours": 2.5, "cpuCores": 2.5, "cpuCost": 0.1, "ramCost": 0.025, "totalCost": 0.125,
		"cpuCoreRequestAverage": 1.5, "cpuCoreUsageAverage": 2.0, "cpuEfficiency": 1.333333, "ramEfficiency": 1.333333,
		"totalEfficiency": 1.333333, "gpuCost": 0.0, "pvs": nil, "lbAllocations": nil,
		"requests": 0.0, "costPer1kRequests": nil, // the fixture answers no requests
		"window":     map[string]any{"start": "2026-03-18T10:00:00Z", "end": "2026-03-18T11:00:00Z"},
		"properties": map[string]any{"cluster": "cluster-one", "node": "od", "controllerKind": "deployment", "namespace": "shop"},
	}
	for k, w := range want {
		if got, _ := json.Marshal(m[k]); !bytes.Equal(got, mustJSON(t, w)) {
			t.Errorf("%s = %s, want %s", k, got, mustJSON(t, w))
		}
	}

	// A client reads it back.
	var back Response
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	a := back.Data[0]["shop"]
	orig := res.Sets[0].Allocations["shop"]
	if a.Name != "shop" || !a.Start.Equal(orig.Start) || !a.Window.End.Equal(orig.Window.End) || a.Properties.Namespace != "shop" ||
		math.Abs(a.TotalCost()-orig.TotalCost()) > 1e-6 || math.Abs(a.CPUEfficiency()-orig.CPUEfficiency()) > 1e-6 {
		t.Errorf("read back %+v, wrote %+v", a, orig)
	}
}

// TestCostPer1kRequests: requests add up in every aggregate, and the cost
// per 1,000 requests is the aggregate's total cost over them; null without
// requests (idle, a container that answered none).
func TestCostPer1kRequests(t *testing.T) {
	series, nodes := fixture()
	// api-1 answers 50,000 requests in the hour, web-1 150,000, job-1
	// 1,000; sleep-1 none.
	for i, n := range []float64{50_000, 150_000, 1_000, 0} {
		series[i].Usage[0].Requests = n
	}
	type want struct {
		requests float64
		per1k    *float64 // nil: null
	}
	tests := []struct {
		params string
		want   map[string]want
	}{
		{"aggregate=pod", map[string]want{
			"api-1": {50_000, ptr(0.05 / 50)}, "web-1": {150_000, ptr(0.075 / 150)}, "job-1": {1_000, ptr(0.274)},
			"sleep-1": {0, nil}, IdleSuffix: {0, nil},
		}},
		{"aggregate=namespace", map[string]want{
			"shop": {200_000, ptr(0.125 / 200)}, "batch": {1_000, ptr(0.285)}, IdleSuffix: {0, nil},
		}},
		{"aggregate=controller&idle=false", map[string]want{
			"deployment:api": {50_000, ptr(0.001)}, "deployment:web": {150_000, ptr(0.0005)}, "job:job": {1_000, ptr(0.274)},
			UnallocatedSuffix: {0, nil},
		}},
		{"aggregate=label:team&idle=false", map[string]want{
			"payments": {200_000, ptr(0.000625)}, "data": {0, nil}, UnallocatedSuffix: {1_000, ptr(0.274)},
		}},
		// Shared idle is part of the cost per request: od's 0.24 over shop's
		// 200,000 requests.
		{"aggregate=namespace&shareIdle=true", map[string]want{
			"shop": {200_000, ptr(0.24 / 200)}, "batch": {1_000, ptr(0.362)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			res := compute(t, tt.params+"&window="+hourWindow, series, nodes)
			b, err := json.Marshal(res.Response())
			if err != nil {
				t.Fatal(err)
			}
			var env struct {
				Data []map[string]map[string]any
			}
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatal(err)
			}
			got := env.Data[0]
			if len(got) != len(tt.want) {
				t.Errorf("%d allocations, want %d", len(got), len(tt.want))
			}
			for k, w := range tt.want {
				a := got[k]
				if a == nil {
					t.Errorf("%s: missing", k)
					continue
				}
				if r, _ := a["requests"].(float64); r != w.requests {
					t.Errorf("%s: requests %v, want %v", k, a["requests"], w.requests)
				}
				p, isNum := a["costPer1kRequests"].(float64)
				switch {
				case w.per1k == nil && a["costPer1kRequests"] != nil:
					t.Errorf("%s: costPer1kRequests %v, want null", k, a["costPer1kRequests"])
				case w.per1k != nil && (!isNum || math.Abs(p-*w.per1k) > 1e-6):
					t.Errorf("%s: costPer1kRequests %v, want %.6f", k, a["costPer1kRequests"], *w.per1k)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRound(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want *float64
	}{
		{0.1234564, ptr(0.123456)},
		{0.1234565001, ptr(0.123457)},
		{2.5, ptr(2.5)},
		{1e300, ptr(1e300)},
		{math.NaN(), nil},
		{math.Inf(1), nil},
	} {
		got := round(tc.in)
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("round(%v) = %v, want %v", tc.in, deref(got), deref(tc.want))
		}
	}
	a := Allocation{CPUCoreRequestAverage: 1, CPUCoreUsageAverage: math.Inf(1), CPUCost: 1}
	b, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["cpuCoreUsageAverage"] != nil || m["cpuEfficiency"] != nil {
		t.Errorf("infinite values should be null: %s", b)
	}
}

func ptr(f float64) *float64 { return &f }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestErrorResponse(t *testing.T) {
	b, err := json.Marshal(ErrorResponse(http.StatusBadRequest, &ParamError{Param: "window", Value: "3x", Reason: "bad"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"code":400,"status":"error","data":null,"message":"invalid parameter window=\"3x\": bad"}`; string(b) != want {
		t.Errorf("%s\nwant %s", b, want)
	}
	if !errors.Is(&ParamError{}, ErrInvalid) {
		t.Error("ParamError does not wrap ErrInvalid")
	}
}

func TestUsageAdd(t *testing.T) {
	a := Minute(t0.Add(time.Minute), 60, 30, 1, 100, 200, 5, 6)
	b := Minute(t0, 30, 60, 1, 300, 200, 1, 2)
	var h Usage
	h.Add(a)
	h.Add(b)
	want := Usage{Start: t0, End: t0.Add(2 * time.Minute), Seconds: 90,
		UsageCoreSeconds: 90, RequestCoreSeconds: 90, AllocCoreSeconds: 60 + 60,
		UsageByteSeconds: 6000 + 9000, RequestByteSeconds: 12000 + 6000, AllocByteSeconds: 12000 + 9000,
		EgressInternetBytes: 6, EgressClusterBytes: 8}
	if h != want {
		t.Errorf("%+v\nwant %+v", h, want)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseMemoryMeasure(t *testing.T) {
	for in, want := range map[string]MemoryMeasure{"": MemoryRSS, "RSS": MemoryRSS, "rss+cache": MemoryRSSPageCache, " working-set ": MemoryWorkingSet} {
		if got, err := ParseMemoryMeasure(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := ParseMemoryMeasure("pss"); err == nil {
		t.Error("pss accepted")
	}
}
