package custommetrics

import (
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/component-base/metrics/legacyregistry"
	cmmetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver/metrics"
)

// libraryPrefix names the families of the library's own metrics.
const libraryPrefix = "metrics_apiserver_"

// registerLibraryMetrics registers the library's freshness histogram
// (metrics_apiserver_metric_freshness_seconds) on the Kubernetes legacy
// registry, once per process.
var registerLibraryMetrics = sync.OnceValue(func() error {
	if err := cmmetrics.RegisterMetrics(legacyregistry.Register); err != nil {
		return fmt.Errorf("register library metrics: %w", err)
	}
	return nil
})

// Gatherer returns the library's own metrics (metrics_apiserver_*, among
// them metrics_apiserver_metric_freshness_seconds) from the Kubernetes
// legacy registry, for serving beside a Penny registry through
// prometheus.Gatherers. It leaves out everything else in that registry
// (the apiserver's request metrics, and go_ and process_ families that the
// Penny registry has too); the adapter's own /metrics serves those.
func Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if err := registerLibraryMetrics(); err != nil {
			return nil, err
		}
		mfs, err := legacyregistry.DefaultGatherer.Gather()
		out := mfs[:0]
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), libraryPrefix) {
				out = append(out, mf)
			}
		}
		return out, err
	})
}
