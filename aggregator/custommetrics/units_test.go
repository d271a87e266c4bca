package custommetrics

import (
	"math"
	"reflect"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/pods"
)

// TestEveryMetricHasAUnit makes a metric added to package pods get a
// deliberate unit here.
func TestEveryMetricHasAUnit(t *testing.T) {
	for _, m := range pods.Metrics {
		if _, ok := units[m.Name]; !ok {
			t.Errorf("metric %s has no unit", m.Name)
		}
	}
	if len(units) != len(pods.Metrics) {
		t.Errorf("%d units for %d metrics", len(units), len(pods.Metrics))
	}
}

func TestQuantity(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		value  float64
		want   string
	}{
		{"bytes are whole", pods.MemoryRSSBytes, 104857600, "104857600"},
		{"bytes round", pods.MemoryPageCacheBytes, 1536.6, "1537"},
		{"rate rounds to whole bytes", pods.NetRxBytesPerSecond, 2.4, "2"},
		{"zero rate", pods.NetTxBytesPerSecond, 0, "0"},
		{"sub-millisecond latency", pods.TCPSRTTP50Seconds, 0.000123, "123u"},
		{"latency rounds to a microsecond", pods.TCPSRTTP99Seconds, 0.0001234567, "123u"},
		{"seconds", pods.TCPConnectP99Seconds, 1.5, "1500m"},
		{"ratio", pods.PageCacheHitRatio, 0.95, "950m"},
		{"ratio of one", pods.PageCacheHitRatio, 1, "1"},
		{"saturates", pods.MemoryRSSBytes, math.MaxFloat64, "9223372036854775807"},
		{"cores in millicores", pods.CPUUsageCores, 0.2504, "250m"},
		{"two cores", pods.CPUUsageCores, 2, "2"},
		{"a core and a half", pods.CPUUsageCores, 1.5, "1500m"},
		{"idle", pods.CPUUsageCores, 0.0001, "0"},
		{"throttled ratio", pods.CPUThrottledRatio, 0.125, "125m"},
		{"cost per hour to the micro-dollar", pods.CostDollarsPerHour, 0.0123456789, "12346u"},
		{"a small pod's cost", pods.CostDollarsPerHour, 4.1e-6, "4u"},
		{"dollars", pods.CostDollarsPerHour, 2.5, "2500m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := quantity(units[tt.metric], tt.value)
			if got := q.String(); got != tt.want {
				t.Fatalf("quantity(%s, %v) = %s, want %s", tt.metric, tt.value, got, tt.want)
			}
		})
	}
}

func TestIdentifierSelector(t *testing.T) {
	in := metav1.LabelSelectorOpIn
	tests := []struct {
		sel  string
		want *metav1.LabelSelector
		bad  bool
	}{
		{"", nil, false},
		{"container=app", &metav1.LabelSelector{MatchLabels: map[string]string{"container": "app"}}, false},
		{"container==app,node=n1", &metav1.LabelSelector{MatchLabels: map[string]string{"container": "app", "node": "n1"}}, false},
		{"container!=app", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "container", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"app"}}}}, false},
		{"container in (b,a)", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "container", Operator: in, Values: []string{"a", "b"}}}}, false},
		{"container=a,container=b", &metav1.LabelSelector{MatchLabels: map[string]string{"container": "a"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "container", Operator: in, Values: []string{"b"}}}}, false},
		{"node,!container", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "container", Operator: metav1.LabelSelectorOpDoesNotExist}, {Key: "node", Operator: metav1.LabelSelectorOpExists}}}, false},
		{"node>1", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := labels.Parse(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			got, err := identifierSelector(sel)
			if tt.bad {
				if !apierrors.IsBadRequest(err) {
					t.Fatalf("got %v, %v; want a bad request", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
