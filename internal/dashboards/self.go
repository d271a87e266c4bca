package dashboards

// perReplica sums a replica's series; the replica is the scrape's
// instance.
func perReplica(expr string) string { return "sum by (instance) (" + expr + ")" }

func selfDashboard() *board {
	d := newDashboard("penny-self", "Penny / Penny",
		"Penny itself: agents and their frames, the Raft store, and how fresh and fast the custom metrics API answers.")
	d.add("Agents and ingest",
		panel{kind: single, title: "Agents connected", unit: "short", width: 6, height: 5,
			description: "Agent streams open on the aggregator replicas: one per agent that is sending.",
			queries:     []query{q("sum(penny_ingest_streams"+sel()+")", "agents")}},
		panel{title: "Frames ingested", unit: "cps", width: 9,
			description: "Frames received from agents and committed to the store per second, per replica.",
			queries: []query{
				q(perReplica(rate("penny_ingest_frames_total", sel())), "{{instance}} received"),
				q(perReplica(rate("penny_ingest_frames_applied_total", sel())), "{{instance}} committed"),
			}},
		panel{title: "Frames rejected by reason", unit: "cps", width: 9,
			description: "Frames the replicas did not apply, per second by reason (duplicate, gap, need_keyframe, corrupt, version, " +
				"too_large, agent_mismatch, inconsistent, limits, other). Zero when nothing is wrong; duplicates follow a reconnect.",
			queries: []query{q("sum by (reason) ("+rate("penny_ingest_frames_rejected_total", sel())+")", "{{reason}}")}},
		panel{title: "Dropped frames", unit: "cps",
			description: "Frames agents gave up on (their buffer of unacknowledged frames was full), per second by node: " +
				"data lost. Zero when nothing is wrong; read from the agents' /metrics.",
			queries: []query{q("sum by (node) ("+rate("penny_agent_frames_dropped_total", sel())+")", "{{node}}")}},
		panel{title: "Freshness p99", unit: "s",
			description: "The 99th percentile age of the custom metrics values served: from the oldest kernel sample that went " +
				"into a value to the API's answer. The alert fires above 5s.",
			queries: []query{q("histogram_quantile(0.99, sum by (le) ("+rate("penny_custom_metrics_freshness_seconds_bucket", sel())+"))", "p99")}},
	)
	d.add("Raft store",
		panel{kind: single, title: "Raft leaders", unit: "short", width: 6, height: 5,
			description: "Replicas that say they are the Raft leader: 1 when all is well, 0 while there is no leader (no writes).",
			queries:     []query{q("sum(penny_kvraft_is_leader"+sel()+")", "leaders")}},
		panel{title: "Raft term and leader", unit: "short", width: 9,
			description: "Each replica's Raft term (it grows with each election: steps mean leader changes) and which one leads (1).",
			queries: []query{
				q("max by (instance) (penny_kvraft_term"+sel()+")", "{{instance}} term"),
				q("max by (instance) (penny_kvraft_is_leader"+sel()+")", "{{instance}} leader"),
			}},
		panel{title: "Apply lag", unit: "short", width: 9,
			description: "Entries committed and not yet applied on each replica: near zero when it keeps up.",
			queries:     []query{q("max by (instance) (penny_kvraft_apply_lag_entries"+sel()+")", "{{instance}}")}},
		panel{title: "Proposals", unit: "ops",
			description: "Writes each replica proposed and applied per second.",
			queries:     []query{q(perReplica(rate("penny_kvraft_proposal_duration_seconds_count", sel())), "{{instance}}")}},
		panel{title: "Proposal latency p99", unit: "s",
			description: "The 99th percentile time from proposing a write to applying it, per replica.",
			queries: []query{q("histogram_quantile(0.99, sum by (instance, le) ("+
				rate("penny_kvraft_proposal_duration_seconds_bucket", sel())+"))", "{{instance}}")}},
		panel{title: "Snapshot size", unit: "bytes",
			description: "Size of the last snapshot each replica took or installed (0 before its first).",
			queries:     []query{q("max by (instance) (penny_kvraft_snapshot_bytes"+sel()+")", "{{instance}}")}},
		panel{title: "Store size against quota", unit: "bytes",
			description: "Bytes of keys and values in each replica's store, and the quota past which writes are refused (0: none).",
			queries: []query{
				q("max by (instance) (penny_store_bytes"+sel()+")", "{{instance}}"),
				q("max(penny_store_quota_bytes"+sel()+")", "quota"),
			}},
	)
	d.add("Custom metrics API",
		panel{title: "Custom metrics requests", unit: "reqps",
			description: "Requests to custom.metrics.k8s.io per second by resource (pods, namespaces) and result (ok, not_found, bad_request, error).",
			queries:     []query{q("sum by (resource, result) ("+rate("penny_custom_metrics_requests_total", sel())+")", "{{resource}} {{result}}")}},
		panel{title: "Custom metrics latency p99", unit: "s",
			description: "The 99th percentile time the replicas took to answer a custom metrics request, by resource.",
			queries: []query{q("histogram_quantile(0.99, sum by (resource, le) ("+
				rate("penny_custom_metrics_request_duration_seconds_bucket", sel())+"))", "{{resource}}")}},
	)
	return d
}
