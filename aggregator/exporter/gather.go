package exporter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gather implements prometheus.Gatherer: the families Collect sends, the
// same series with the same labels in the same order, in about a quarter
// of the time a registry takes to gather Collect. The families of one
// series per container (most of a scrape: some 24 series per container)
// are built directly, without a constant metric per series, and without
// the registry's checks and sort: the containers are sorted once, their
// node and cgroup label pairs built once and shared by their series,
// their label values checked once. The other families (nodes, pods,
// workloads, tenants, namespaces, cost policies, scrape errors) are
// gathered from a registry as before.
//
// Serve it beside the replica's registry with Beside, not registered in
// it (a registry would collect it the slow way).
func (c *Collector) Gather() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, ok := c.read(ctx)
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectFunc(func(ch chan<- prometheus.Metric) {
		defer func() { ch <- c.errors }()
		if ok {
			c.collectShared(ctx, ch, res)
		}
	})); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	shared, err := reg.Gather()
	if err != nil {
		err = fmt.Errorf("exporter: %w", err)
	}
	if !ok {
		return shared, err
	}
	containers, left := buildContainers(res.Containers, c.tenant)
	if left > 0 {
		c.log.Debug("metrics scrape left out containers or their info: label values that are not valid UTF-8, or read twice",
			"left", left)
	}
	mfs, merr := merge(shared, containers)
	return mfs, errors.Join(err, merr)
}

// collectFunc is an unchecked collector (it describes nothing) that
// collects by calling itself.
type collectFunc func(ch chan<- prometheus.Metric)

func (f collectFunc) Describe(chan<- *prometheus.Desc) {}

func (f collectFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// Beside returns a gatherer of the families of g (such as the replica's
// registry) and of c, sorted by name as a registry sorts them. Unlike
// prometheus.Gatherers, it neither checks nor sorts c's series again; a
// family both have is an error, and served as g has it.
func Beside(g prometheus.Gatherer, c *Collector) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		a, aerr := g.Gather()
		b, berr := c.Gather()
		mfs, merr := merge(a, b)
		return mfs, errors.Join(aerr, berr, merr)
	})
}

// merge merges two lists of families sorted by name; a family both have
// is an error, and a's is kept.
func merge(a, b []*dto.MetricFamily) ([]*dto.MetricFamily, error) {
	out := make([]*dto.MetricFamily, 0, len(a)+len(b))
	var errs []error
	for len(a) > 0 && len(b) > 0 {
		switch c := strings.Compare(a[0].GetName(), b[0].GetName()); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			errs = append(errs, fmt.Errorf("exporter: metric family %s gathered twice", b[0].GetName()))
			b = b[1:]
		}
	}
	out = append(append(out, a...), b...)
	return out, errors.Join(errs...)
}
