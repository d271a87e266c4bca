package cost_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/allocation"
	"github.com/pennyhq/penny/aggregator/allocation/allocationtest"
	model "github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/cmd/penny/cost"
	"github.com/pennyhq/penny/internal/kvtest"
)

// t0 starts the fixture's hour, in the past.
var t0 = time.Now().Add(-3 * time.Hour).Truncate(time.Hour)

var hourWindow = t0.Format(time.RFC3339) + "," + t0.Add(time.Hour).Format(time.RFC3339)

var (
	serveOnce sync.Once
	served    string
)

// serve starts a real GET /v1/allocation over a replica that holds an hour
// of allocationtest.Nodes, written as the ingest writes frames and rolled
// up as the leader rolls them; the tests share it.
func serve(t *testing.T) string {
	t.Helper()
	serveOnce.Do(func() {
		// The store outlives the test that starts it: the others share it.
		store := kvtest.Start(&longTB{TB: t})
		prices := allocationtest.Prices(t)
		allocationtest.NewWriter(t, store, prices, allocationtest.Nodes()).Run(t0.Add(-time.Minute), t0.Add(61*time.Minute), 10*time.Second)
		rd, err := history.NewReader(history.ReaderConfig{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		h, err := allocation.NewHandler(allocation.Config{History: rd, Prices: prices})
		if err != nil {
			t.Fatal(err)
		}
		served = httptest.NewServer(h).URL
	})
	if served == "" {
		t.Fatal("no replica")
	}
	return served
}

// longTB is a testing.TB whose cleanups run never: the shared replica
// lives as long as the test binary.
type longTB struct{ testing.TB }

func (longTB) Cleanup(func()) {}

// fields are a table's lines, split on spaces.
func fields(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// TestTable: the table of each --by, with the fixture's hand-computed
// costs (allocationtest.Nodes): rows by cost, idle last, then the totals.
func TestTable(t *testing.T) {
	url := serve(t)
	for _, tc := range []struct {
		name string
		cfg  cost.Config
		want []string // each line's fields, joined by one space
	}{
		{"namespace", cost.Config{By: "namespace"}, []string{
			"Cost in USD from " + strings.Replace(hourWindow, ",", " to ", 1) + " (" + hourWindow + "), by namespace",
			"NAMESPACE CPU RAM NETWORK TOTAL CPU EFF RAM EFF EFFICIENCY PER 1K REQ",
			// shop: CPU 0.08 + 0.12, RAM 0.02 + 0.03, egress 0.421875;
			// efficiency: CPU 2 used of 1.5 requested, RAM 4 of 3;
			// 90,000 + 450,000 requests: 0.671875 / 540 per 1,000.
			"shop 0.200000 0.050000 0.421875 0.671875 133.3% 133.3% 133.3% 0.001244",
			// batch: job-1 (no request) and sleep-1: CPU 0.75 used of
			// 0.5 requested, RAM 2 of 1; in all (1.5 × 0.065 + 2 ×
			// 0.021) / 0.086.
			"batch 0.065000 0.021000 0.000000 0.086000 150.0% 200.0% 162.2% -",
			// The cgroups outside pods: no requests.
			"__unallocated__ 0.042000 0.010250 0.000000 0.052250 100.0% 100.0% 100.0% -",
			"__idle__ 0.095000 0.092000 - 0.187000 - - - -",
			// (4/3 × 0.25 + 1.622 × 0.086 + 0.05225) / 0.38825; all the
			// cost over all the requests: 0.997125 / 540.
			"TOTAL 0.402000 0.173250 0.421875 0.997125 - - 135.2% 0.001847",
		}},
		{"pod in one namespace", cost.Config{By: "pod", Namespace: "shop"}, []string{
			"Cost in USD from",
			"NAMESPACE/POD CPU RAM NETWORK TOTAL CPU EFF RAM EFF EFFICIENCY PER 1K REQ",
			"shop/web-1 0.120000 0.030000 0.421875 0.571875 300.0% 300.0% 300.0% 0.001271", // 0.571875 / 450
			"shop/api-1 0.080000 0.020000 0.000000 0.100000 50.0% 50.0% 50.0% 0.001111",    // 0.10 / 90
			// od's idle, shrunk to shop's share of od's allocated cost:
			// CPU 0.02 × 0.20/0.26, RAM 0.07 × 0.05/0.07.
			"__idle__ 0.015385 0.050000 - 0.065385 - - - -",
			"TOTAL 0.215385 0.100000 0.421875 0.737260 - - 200.0% 0.001365",
		}},
		{"node, idle shared", cost.Config{By: "node", ShareIdle: true}, []string{
			"Cost in USD from",
			"NODE CPU RAM NETWORK SHARED IDLE TOTAL CPU EFF RAM EFF EFFICIENCY PER 1K REQ",
			// od costs 0.42: its pods pay it all, plus the egress and
			// the kubelet (0.025), which takes no share of the idle.
			"od 0.300000 0.145000 0.421875 0.090000 0.866875",
			"host 0.080000 0.020000 0.000000 0.075000 0.100000",
			"spot 0.022000 0.008250 0.000000 0.022000 0.030250",
			"TOTAL",
		}},
		{"no requests, no column", cost.Config{By: "namespace", Namespace: "batch"}, []string{
			"Cost in USD from",
			"NAMESPACE CPU RAM NETWORK TOTAL CPU EFF RAM EFF EFFICIENCY",
			"batch 0.065000 0.021000 0.000000 0.086000 150.0% 200.0% 162.2%",
			"__idle__",
			"TOTAL",
		}},
		{"label", cost.Config{By: "label:app", Filter: `label[app]:"api","job"`}, []string{
			"Cost in USD from",
			"LABEL APP CPU RAM NETWORK TOTAL CPU EFF RAM EFF EFFICIENCY PER 1K REQ",
			"api 0.080000 0.020000 0.000000 0.100000 50.0% 50.0% 50.0% 0.001111",
			"job 0.060000 0.020000 0.000000 0.080000 100.0% 100.0% 100.0% -",
			"__idle__",
			"TOTAL",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL, cfg.Window = url, hourWindow
			a, err := cost.Fetch(context.Background(), &cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := cost.Table(&out, a, &cfg); err != nil {
				t.Fatal(err)
			}
			lines := fields(out.String())
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), out.String())
			}
			for i, w := range tc.want {
				// A line given in full must match in full, else its start.
				if got := strings.Join(lines[i], " "); !strings.HasPrefix(got, w) || len(strings.Fields(w)) == len(lines[i]) && got != w {
					t.Errorf("line %d:\n got %q\nwant %q", i, got, w)
				}
			}
		})
	}
}

// TestCSVAndJSON: CSV has a header and a row per allocation, idle
// included, numbers in full; the JSON is the API's, byte for byte.
func TestCSVAndJSON(t *testing.T) {
	cfg := cost.Config{URL: serve(t), Window: hourWindow, By: "tenant"}
	a, err := cost.Fetch(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := cost.CSV(&out, a); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || strings.Join(recs[0], ",") != strings.Join(cost.CSVHeader, ",") || len(recs[0]) != 17 {
		t.Fatalf("csv: %q", recs)
	}
	// web-1 is shop's; api-1 carries cost.tenant-id: acme.
	want := map[string][3]string{ // total, requests, cost per 1,000 requests
		"shop": {"0.571875", "450000", "0.001271"}, "acme": {"0.1", "90000", "0.001111"}, "batch": {"0.086", "0", ""},
		model.UnallocatedSuffix: {"0.05225", "0", ""}, model.IdleSuffix: {"0.187", "0", ""}}
	for _, r := range recs[1:] {
		w := want[r[0]]
		if w[0] != r[10] || r[1] != t0.Format(time.RFC3339) || r[3] != "60" || r[14] != "USD" ||
			(r[0] == model.IdleSuffix) != (r[13] == "") || r[15] != w[1] || r[16] != w[2] {
			t.Errorf("csv row %q; want total %s, requests %s, per 1,000 %q", r, w[0], w[1], w[2])
		}
	}

	resp, err := http.Get(cfg.URL + allocation.Path + "?" + cfg.Params().Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(a.Body, body) || !json.Valid(a.Body) {
		t.Errorf("--json prints\n%s\nthe API answers\n%s", a.Body, body)
	}
}

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		cfg  cost.Config
		want string
	}{
		{cost.Config{}, "accumulate=true&aggregate=namespace&window=24h"},
		{cost.Config{By: "pod", Namespace: "shop", Window: "7d"}, "accumulate=true&aggregate=namespace%2Cpod&filter=namespace%3A%22shop%22&window=7d"},
		{cost.Config{By: "controller", Namespace: "shop", Filter: `label[a]:"x"|label[b]:"y"`, ShareIdle: true},
			"accumulate=true&aggregate=namespace%2Ccontroller&filter=namespace%3A%22shop%22%2B%28label%5Ba%5D%3A%22x%22%7Clabel%5Bb%5D%3A%22y%22%29&shareIdle=true&window=24h"},
		{cost.Config{By: "label:team,tenant"}, "accumulate=true&aggregate=label%3Ateam%2Ctenant&window=24h"},
	} {
		c := tc.cfg
		c.Complete()
		if got := c.Params().Encode(); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.cfg, got, tc.want)
		}
	}
}

// TestErrors: what the aggregator refuses comes back with its reason; a
// bad URL is refused before asking.
func TestErrors(t *testing.T) {
	url := serve(t)
	for _, tc := range []struct {
		name string
		cfg  cost.Config
		want string
		agg  bool
	}{
		{"bad window", cost.Config{URL: url, Window: "3x"}, `400 Bad Request: invalid parameter window="3x"`, true},
		{"unknown aggregate", cost.Config{URL: url, By: "team"}, `invalid parameter aggregate="team": "team" is not supported`, true},
		{"bad filter", cost.Config{URL: url, Filter: "namespace:"}, "invalid parameter filter=", true},
		{"bad url", cost.Config{URL: "localhost:7379"}, "want http://", false},
		{"bad namespace", cost.Config{URL: url, Namespace: `a"b`}, "not a namespace name", false},
		{"nobody serving", cost.Config{URL: "http://127.0.0.1:1"}, "is an aggregator serving http://127.0.0.1:1?", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cost.Fetch(context.Background(), &tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, cost.ErrAggregator) != tc.agg {
				t.Errorf("err = %v, want %q (aggregator error %v)", err, tc.want, tc.agg)
			}
		})
	}
}
