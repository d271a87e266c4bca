package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pennyhq/penny/internal/freeport"
)

// promServer is a real Prometheus server (Debian's prometheus package)
// that a test started with a configuration of its own.
type promServer struct {
	url  string
	http *http.Client
}

// startPrometheus runs bin with config on dataDir (which may hold blocks
// already) on a free loopback port, until the test ends, and waits until
// it is ready.
func startPrometheus(t *testing.T, bin, config, dataDir string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeport.T(t)
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+dataDir, "--web.listen-address="+addr,
		"--storage.tsdb.retention.time=30d", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("last log lines of prometheus:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	p := &promServer{url: "http://" + addr, http: &http.Client{Timeout: 10 * time.Second}}
	eventually(t, "prometheus ready", 60*time.Second, func() error {
		resp, err := p.http.Get(p.url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	return p
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string
	Value  float64
}

// get calls the HTTP API and decodes its data.
func (p *promServer) get(path string, params url.Values, data any) error {
	resp, err := p.http.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %s: %w", path, b, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s", path, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query runs an instant query now (/api/v1/query) and returns its series;
// a scalar is one series without labels.
func (p *promServer) query(expr string) ([]promSample, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &d); err != nil {
		return nil, err
	}
	value := func(v []any) (float64, error) {
		if len(v) != 2 {
			return 0, fmt.Errorf("value %v", v)
		}
		s, _ := v[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch d.ResultType {
	case "vector":
		var rs []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &rs); err != nil {
			return nil, err
		}
		out := make([]promSample, 0, len(rs))
		for _, r := range rs {
			v, err := value(r.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, promSample{Metric: r.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var r []any
		if err := json.Unmarshal(d.Result, &r); err != nil {
			return nil, err
		}
		v, err := value(r)
		return []promSample{{Value: v}}, err
	}
	return nil, fmt.Errorf("result type %s", d.ResultType)
}

// labelValues returns the values of label on the series match selects.
func (p *promServer) labelValues(label, match string) ([]string, error) {
	var vs []string
	err := p.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {match}}, &vs)
	return vs, err
}

// promRule is one rule as /api/v1/rules reports it.
type promRule struct {
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	Health         string    `json:"health"`
	LastError      string    `json:"lastError"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

func (p *promServer) rules() ([]promRule, error) {
	var d struct {
		Groups []struct {
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", nil, &d); err != nil {
		return nil, err
	}
	var out []promRule
	for _, g := range d.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// nonNaN tells whether any of ss has a number.
func nonNaN(ss []promSample) bool {
	for _, s := range ss {
		if !math.IsNaN(s.Value) {
			return true
		}
	}
	return false
}

// backfill writes the gauges of mfs, as each of the scrape targets
// exported them, at the given times (each value scaled by scale) as an
// OpenMetrics file, and turns it into TSDB blocks in dir with
// `promtool tsdb create-blocks-from openmetrics`: history that Prometheus
// then holds as if it had scraped it.
func backfill(ctx context.Context, promtool, dir string, mfs []*dto.MetricFamily, targets []map[string]string,
	times []time.Time, scale float64) error {
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_GAUGE {
			return fmt.Errorf("backfill %s: not a gauge", mf.GetName())
		}
		fmt.Fprintf(&b, "# TYPE %s gauge\n", mf.GetName())
		for _, m := range mf.GetMetric() {
			for _, target := range targets {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
				}
				for k, v := range target {
					ls = append(ls, k+"="+strconv.Quote(v))
				}
				series := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
				for _, at := range times {
					fmt.Fprintf(&b, "%s %g %d.%03d\n", series, m.GetGauge().GetValue()*scale, at.Unix(), at.Nanosecond()/1e6)
				}
			}
		}
	}
	b.WriteString("# EOF\n")
	f, err := os.CreateTemp("", "penny-backfill-*.om")
	if err != nil {
		return err
	}
	in := f.Name()
	defer os.Remove(in)
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", in, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool tsdb create-blocks-from openmetrics: %w\n%s", err, out)
	}
	return nil
}
