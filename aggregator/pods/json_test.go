package pods_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/pods"
)

// checkAsEncodingJSON fails unless AppendJSON writes ps as json.Marshal
// does, and fails where it fails.
func checkAsEncodingJSON(t *testing.T, ps []pods.Pod) {
	t.Helper()
	want, werr := json.Marshal(ps)
	got, gerr := pods.AppendJSON(nil, ps)
	if (gerr != nil) != (werr != nil) {
		t.Fatalf("AppendJSON error %v, encoding/json's %v", gerr, werr)
	}
	if werr == nil && string(got) != string(want) {
		t.Errorf("AppendJSON:\n%s\nencoding/json:\n%s", got, want)
	}
}

// randomString is a short string: usually a plain name, sometimes with
// what JSON escapes (quotes, HTML, control characters, non-ASCII, invalid
// UTF-8).
func randomString(r *rand.Rand) string {
	pieces := []string{"web", "-", "0", "kube-system", "app.kubernetes.io/name", `"`, `\`, "<", ">", "&", "\n", "\x01",
		"é", "日本", "\u2028", "\xff", " ", "_"}
	n := r.IntN(4)
	if r.IntN(4) > 0 {
		return pieces[r.IntN(3)] + pieces[r.IntN(3)]
	}
	s := ""
	for range n + 1 {
		s += pieces[r.IntN(len(pieces))]
	}
	return s
}

func randomFloat(r *rand.Rand) float64 {
	switch r.IntN(4) {
	case 0:
		return float64(r.IntN(1 << 20))
	case 1:
		return math.Float64frombits(r.Uint64() &^ (0x7ff << 52)) // finite
	default:
		return r.NormFloat64() * math.Pow10(r.IntN(50)-25)
	}
}

func randomPod(r *rand.Rand) pods.Pod {
	p := pods.Pod{Namespace: randomString(r), Name: randomString(r), UID: randomString(r), Node: randomString(r),
		Values: pods.Values{Time: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC(), WindowSeconds: randomFloat(r)}}
	if r.IntN(2) == 0 {
		p.Labels = map[string]string{}
		for range r.IntN(4) {
			p.Labels[randomString(r)] = randomString(r)
		}
	}
	if r.IntN(2) == 0 {
		p.QOSClass, p.OwnerKind, p.OwnerName = randomString(r), randomString(r), randomString(r)
	}
	if r.IntN(5) > 0 {
		p.Containers = []string{}
		for range r.IntN(4) {
			p.Containers = append(p.Containers, randomString(r))
		}
	}
	if r.IntN(2) == 0 {
		p.RequestCPUMillis, p.RequestMemoryBytes, p.LimitCPUMillis, p.LimitMemoryBytes = r.Int64N(4000), r.Int64()-r.Int64(), 0, r.Int64N(9)
	}
	if r.IntN(6) > 0 {
		p.Metrics = map[string]float64{}
		for _, m := range pods.Metrics {
			if r.IntN(3) > 0 {
				p.Metrics[m.Name] = randomFloat(r)
			}
		}
	}
	if r.IntN(20) == 0 {
		p.Time = p.Time.In(time.FixedZone("", -3600*r.IntN(12)))
	}
	return p
}

func TestAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	checkAsEncodingJSON(t, nil)
	checkAsEncodingJSON(t, []pods.Pod{})
	for range 300 {
		ps := make([]pods.Pod, r.IntN(5))
		for i := range ps {
			ps[i] = randomPod(r)
		}
		checkAsEncodingJSON(t, ps)
	}
	edges := []float64{1e-6, 1e-7, 9.99e-10, 1e20, 1e21, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1), -1.5e-300}
	for _, v := range edges {
		checkAsEncodingJSON(t, []pods.Pod{{Values: pods.Values{WindowSeconds: v, Metrics: map[string]float64{"x": v}}}})
	}
	for _, v := range []float64{math.NaN(), math.Inf(1)} {
		checkAsEncodingJSON(t, []pods.Pod{{Values: pods.Values{Metrics: map[string]float64{"x": v}}}})
		checkAsEncodingJSON(t, []pods.Pod{{Values: pods.Values{WindowSeconds: v}}})
	}
	checkAsEncodingJSON(t, []pods.Pod{{Values: pods.Values{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("shop", "web-1", "<a&b>", 0.5, 1e21)
	f.Fuzz(func(t *testing.T, ns, name, label string, a, b float64) {
		checkAsEncodingJSON(t, []pods.Pod{{Namespace: ns, Name: name, Labels: map[string]string{label: name},
			Containers: []string{label}, Values: pods.Values{WindowSeconds: a, Metrics: map[string]float64{label: b}}}})
	})
}

// BenchmarkPodsJSON encodes a namespace's pods (2,500 of 3 containers and
// 16 metrics, as make bench-read's namespace at 50,000 containers) with
// AppendJSON and, for reference, with encoding/json.
func BenchmarkPodsJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	ps := make([]pods.Pod, 2500)
	for i := range ps {
		ps[i] = pods.Pod{Namespace: "ns-1", Name: "web-7c9f8d-x2k4p", UID: "8a3c2e4b-1f7d-4a4e-9a61-3b1c2d7e8f90", Node: "node-123",
			Labels: map[string]string{"app": "web", "pod-template-hash": "7c9f8d"}, QOSClass: "Burstable",
			OwnerKind: "ReplicaSet", OwnerName: "web-7c9f8d", Containers: []string{"", "app", "sidecar"},
			RequestCPUMillis: 250, RequestMemoryBytes: 256 << 20,
			Values: pods.Values{Time: time.Now().UTC(), WindowSeconds: 1, Metrics: map[string]float64{}}}
		for _, m := range pods.Metrics[:16] {
			ps[i].Metrics[m.Name] = r.Float64() * math.Pow10(r.IntN(12)-3)
		}
	}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = pods.AppendJSON(buf[:0], ps); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ps); err != nil {
				b.Fatal(err)
			}
		}
	})
}
