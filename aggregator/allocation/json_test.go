package allocation

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
)

// sameAsEncoder checks that writeResponse writes what json.Encoder does.
func sameAsEncoder(t *testing.T, resp *cost.Response) {
	t.Helper()
	var want, got bytes.Buffer
	if err := json.NewEncoder(&want).Encode(resp); err != nil {
		t.Fatal(err)
	}
	if err := writeResponse(&got, resp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("writeResponse wrote\n%s\njson.Encoder\n%s", got.Bytes(), want.Bytes())
	}
}

func testAllocation(name, label string, f float64) *cost.Allocation {
	w := cost.Window{Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)}
	return &cost.Allocation{Name: name, Window: w, Start: w.Start.Add(90 * time.Second), End: w.End,
		Properties:   cost.Properties{Cluster: "cluster-one", Namespace: name, Pod: label, Labels: map[string]string{label: name, "app": "x"}},
		CPUCoreHours: f, CPUCoreRequestAverage: f / 3, CPUCoreUsageAverage: 0.25, CPUCost: f * 0.031611, CPUCostIdle: 1e-9,
		RAMByteHours: f * 1e12, RAMBytesRequestAverage: 3e9, RAMBytesUsageAverage: f, RAMCost: 1e21, RAMCostIdle: -0,
		NetworkTransferBytes: 1 << 40, NetworkCost: f, NetworkInternetCost: math.SmallestNonzeroFloat64}
}

func TestWriteResponseAsEncoder(t *testing.T) {
	a := testAllocation("shop", "api-<1>&\u2028", 12.3456789)
	b := testAllocation("__idle__", "", math.NaN())
	c := testAllocation("ünïcode \"quoted\" \\ \x01", "x", math.Inf(1))
	for _, resp := range []*cost.Response{
		{Code: 200, Status: "success", Data: []map[string]*cost.Allocation{{"shop": a, "__idle__": b, c.Name: c}}, Currency: "USD"},
		{Code: 200, Status: "success", Data: []map[string]*cost.Allocation{{}, nil, {"a": nil, "b": a}}, Warning: "3 spans <guessed>"},
		{Code: 200, Status: "success", Data: []map[string]*cost.Allocation{}},
		{Code: 200, Status: "success"},
		cost.ErrorResponse(400, errors.New(`window "x": is not <valid> & more`)),
	} {
		sameAsEncoder(t, resp)
	}
}

func FuzzWriteResponse(f *testing.F) {
	f.Add("shop", "app", "USD", 1.5)
	f.Add("a<b>&c", "\u2028\xff", "", math.Copysign(0, -1))
	f.Fuzz(func(t *testing.T, name, label, currency string, v float64) {
		sameAsEncoder(t, &cost.Response{Code: 200, Status: "success", Currency: currency, Warning: label,
			Data: []map[string]*cost.Allocation{{name: testAllocation(name, label, v), label: testAllocation(label, name, -v)}}})
	})
}
