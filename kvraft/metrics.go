package kvraft

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	proposalSeconds prometheus.Histogram
	fsyncSeconds    prometheus.Histogram
	applyLag        prometheus.Gauge
	snapshots       prometheus.Counter
	appliedIndex    prometheus.Gauge
	isLeader        prometheus.Gauge
	term            prometheus.Gauge
	snapshotBytes   prometheus.Gauge
	// txnsThen and txnsElse count applied txns by the branch taken.
	txnsThen prometheus.Counter
	txnsElse prometheus.Counter
	// The store quota (etcd's NOSPACE alarm).
	quotaBytes      prometheus.Gauge
	storeBytes      prometheus.Gauge
	noSpaceAlarm    prometheus.Gauge
	noSpaceRefusals prometheus.Counter
	// backgroundErrors counts errors of background loops, by loop.
	backgroundErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 18)
	m := &metrics{
		proposalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "proposal_duration_seconds",
			Help: "Time from proposing a write to applying it on the proposing replica.", Buckets: buckets}),
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "persist_duration_seconds",
			Help: "Time to persist one Raft Ready (WAL write and fsync).", Buckets: buckets}),
		applyLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "apply_lag_entries",
			Help: "Committed but not yet applied entries on this replica."}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "snapshots_total",
			Help: "Snapshots taken or installed by this replica."}),
		appliedIndex: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "applied_index",
			Help: "Last log index applied to the state machine."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "is_leader",
			Help: "1 if this replica is the Raft leader."}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "term",
			Help: "The Raft term this replica is in; it grows with every election."}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "kvraft", Name: "snapshot_bytes",
			Help: "Size of the last snapshot this replica took or installed, in bytes."}),
		quotaBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "store", Name: "quota_bytes",
			Help: "The store quota the cluster enforces, in bytes of keys and values (0: none)."}),
		storeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "store", Name: "bytes",
			Help: "Bytes of keys and values in this replica's store, as the quota counts them."}),
		noSpaceAlarm: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "penny", Subsystem: "store", Name: "nospace_alarm",
			Help: "1 while writes that grow the store are refused because it reached its quota."}),
		noSpaceRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "penny", Subsystem: "store", Name: "nospace_refusals_total",
			Help: "Writes refused because they would take the store past its quota."}),
		backgroundErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "penny", Subsystem: "store", Name: "background_errors_total",
			Help: "Errors of the store's background loops (snapshot, purge), by loop; they are retried."}, []string{"loop"}),
	}
	txns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "penny", Subsystem: "kvraft", Name: "txns_total",
		Help: "Transactions applied by this replica, by the branch taken (then: the compares held)."}, []string{"branch"})
	m.txnsThen = txns.WithLabelValues("then")
	m.txnsElse = txns.WithLabelValues("else")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.proposalSeconds, m.fsyncSeconds, m.applyLag, m.snapshots, m.appliedIndex, m.isLeader, m.term, m.snapshotBytes, txns,
		m.quotaBytes, m.storeBytes, m.noSpaceAlarm, m.noSpaceRefusals, m.backgroundErrors} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
