package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	streams      prometheus.Gauge
	frames       prometheus.Counter
	frameBytes   prometheus.Counter
	applied      prometheus.Counter
	rejected     *prometheus.CounterVec
	conflicts    prometheus.Counter
	proposal     prometheus.Histogram
	batchTxns    prometheus.Histogram
	queueBytes   prometheus.Gauge
	backpressure prometheus.Histogram
	// The limits: in-flight frame bytes held, waits for room under their
	// cap, and streams the limits closed.
	inflightBytes prometheus.Gauge
	inflightWaits prometheus.Counter
	closed        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_ingest_streams",
			Help: "Agent streams open on this replica."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_ingest_frames_total",
			Help: "Frames received from agents."}),
		frameBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_ingest_frame_bytes_total",
			Help: "Bytes of frames received from agents."}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_ingest_frames_applied_total",
			Help: "Frames committed to the store."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_ingest_frames_rejected_total",
			Help: "Frames not applied, by reason (duplicate, gap, need_keyframe, corrupt, version, too_large, agent_mismatch, inconsistent, limits, other)."},
			[]string{"reason"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_ingest_conflicts_total",
			Help: "Transactions that failed because the agent's state changed in the store (another replica wrote it)."}),
		proposal: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "penny_ingest_proposal_duration_seconds",
			Help: "Time from proposing a batch of transactions to its commit on this replica.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batchTxns: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "penny_ingest_batch_transactions",
			Help: "Agent transactions per proposal.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		queueBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_ingest_queue_bytes",
			Help: "Bytes of transactions waiting for a proposal."}),
		backpressure: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "penny_ingest_backpressure_seconds",
			Help: "Time streams waited for room in the proposal queue.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_ingest_inflight_bytes",
			Help: "Bytes of frames received and not yet committed or refused, partial frames included, across all streams."}),
		inflightWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_ingest_inflight_waits_total",
			Help: "Reads that waited for room under the in-flight bytes cap."}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_ingest_streams_refused_total",
			Help: "Streams refused or closed by the ingest's limits, by reason (media_type, overloaded, frame_timeout)."},
			[]string{"reason"}),
	}
	for _, r := range []string{"duplicate", "gap", "need_keyframe", "corrupt", "version", "too_large", "agent_mismatch", "inconsistent", "limits", "other"} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"media_type", "overloaded", "frame_timeout"} {
		m.closed.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.frames, m.frameBytes, m.applied, m.rejected, m.conflicts, m.proposal,
			m.batchTxns, m.queueBytes, m.backpressure, m.inflightBytes, m.inflightWaits, m.closed)
	}
	return m
}
