package local

import (
	"log/slog"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/report"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// pricer prices the host's cgroups for the live table and the JSON: at the
// prices in force of the in-process aggregator (its pricing file, or
// OpenCost's defaults, and the price flags) for the host's facts, by the
// rule of GET /v1/containers (query.Price). Outside Kubernetes nothing is
// requested, so usage alone is charged: CPU cores over the interval,
// memory in the history's measure (--cost-memory-usage, RSS by default),
// and egress.
type pricer struct {
	prices query.Prices
	facts  pricing.Facts
	// memory is what counts as a cgroup's memory usage: the history's
	// measure, so that the column and the history agree.
	memory cost.MemoryMeasure
}

// newPricer prices with prices the host that flags describe, with the
// capacity the agent ships for it, memory in measure m.
func newPricer(prices query.Prices, flags nodemeta.Facts, m cost.MemoryMeasure, log *slog.Logger) *pricer {
	host, err := daemon.HostFacts("/proc", "/sys")
	if err != nil {
		log.Debug("pricing without the host's capacity", "err", err)
	}
	f := daemon.NodeFacts("", flags, nil, host)
	if m == "" {
		m = cost.MemoryRSS
	}
	return &pricer{prices: prices, facts: query.PricingFacts(&f), memory: m}
}

// Prices implements report.Pricer: one set of rates per sample, as the
// pricing file may be reloaded between two.
func (p *pricer) Prices() (string, func(c *report.Cgroup, intervalSeconds float64)) {
	r := query.CostRates(p.prices.Rates(p.facts))
	return r.Currency, func(c *report.Cgroup, iv float64) { query.Price(c, iv, nil, p.memory, r) }
}
