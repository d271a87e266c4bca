package shipper

import "github.com/prometheus/client_golang/prometheus"

// pair counts frames and their bytes.
type pair struct {
	frames, bytes prometheus.Counter
}

type metrics struct {
	sent, acked, resent, dropped pair
	bufferBytes, bufferFrames    prometheus.Gauge
	connected                    prometheus.Gauge
	reconnects                   prometheus.Counter
	acks                         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := func(what, help string) pair {
		return pair{
			frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_agent_frames_" + what + "_total", Help: "Frames " + help + "."}),
			bytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_agent_frame_bytes_" + what + "_total", Help: "Bytes of frames " + help + "."}),
		}
	}
	m := &metrics{
		sent:    f("sent", "written to an aggregator connection, resends included"),
		acked:   f("acked", "acknowledged by an aggregator"),
		resent:  f("resent", "written again after a reconnect or a request to resend"),
		dropped: f("dropped", "dropped unacknowledged (buffer full, or the aggregator could not apply them)"),
		bufferBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_agent_frame_buffer_bytes",
			Help: "Bytes of frames waiting for an acknowledgement."}),
		bufferFrames: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_agent_frame_buffer_frames",
			Help: "Frames waiting for an acknowledgement."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_agent_aggregator_connected",
			Help: "1 while a stream to an aggregator is open."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_agent_aggregator_reconnects_total",
			Help: "Aggregator connections lost or refused."}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_agent_acks_total",
			Help: "Acknowledgements received, by status."}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.sent.frames, m.sent.bytes, m.acked.frames, m.acked.bytes, m.resent.frames,
			m.resent.bytes, m.dropped.frames, m.dropped.bytes, m.bufferBytes, m.bufferFrames,
			m.connected, m.reconnects, m.acks)
	}
	return m
}
